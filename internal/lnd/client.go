package lnd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnrpc/signrpc"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"github.com/lightningnetwork/lnd/routing/route"
)

// minVersion is the oldest lnd we accept. Build tags are checked separately
// (requiredTags) so the message can name the RPCs that need them.
var minVersion = &verrpc.Version{AppMajor: 0, AppMinor: 21, AppPatch: 0}

// requiredTags are the build tags we need and what needs them. routerrpc
// (SendPaymentV2, TrackPaymentV2) has no build tag: every lnd has it.
var requiredTags = []struct {
	tag  string
	need string
}{
	{"invoicesrpc", "hold invoices: AddHoldInvoice, SettleInvoice, " +
		"CancelInvoice, SubscribeSingleInvoice"},
	{"signrpc", "SignMessage with the node key (SignTagged)"},
	{"chainrpc", "RegisterBlockEpochNtfn (SubscribeBlocks)"},
}

// Client is a connection to one lnd node. It survives lnd restarts: calls
// are repeated while lnd is away (Config.RetryFor) and subscriptions are
// re-established. All its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	svc    *lndclient.GrpcLndServices
	params *chaincfg.Params
	pubKey route.Vertex

	// routerSvc is svc.Router and lightningSvc svc.Client; tests replace
	// them.
	routerSvc    lndclient.ServiceClient[routerrpc.RouterClient]
	lightningSvc lndclient.ServiceClient[lnrpc.LightningClient]

	// closed is canceled by Close; every call and subscription stops.
	closed    context.Context
	close     context.CancelCauseFunc
	closeOnce sync.Once

	// wg counts the subscription goroutines; Close waits for them. mu
	// orders starting one against Close.
	mu sync.Mutex
	wg sync.WaitGroup
}

// Connect dials lnd, waits until its RPC server is up (for at most
// RetryFor), and checks that it is recent enough and has every build tag we
// need.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "lnd", "host", cfg.Host)

	closed, closeFn := context.WithCancelCause(context.Background())
	c := &Client{cfg: cfg, log: log, closed: closed, close: closeFn}

	err := c.do(ctx, "Connect", func(ctx context.Context) error {
		svc, err := lndclient.NewLndServices(&lndclient.LndServicesConfig{
			LndAddress:         cfg.Host,
			Network:            lndclient.Network(cfg.Network),
			MacaroonDir:        cfg.MacaroonDir,
			CustomMacaroonPath: cfg.MacaroonPath,
			TLSPath:            cfg.TLSCertPath,
			// Any version passes here; checkVersion below
			// gives the precise message.
			CheckVersion:       &verrpc.Version{},
			BlockUntilUnlocked: true,
			CallerCtx:          ctx,
			RPCTimeout:         cfg.RPCTimeout,
		})
		if err != nil {
			return err
		}
		c.svc = svc

		return nil
	})
	if err != nil {
		closeFn(ErrClosed)
		if strings.Contains(err.Error(), "network mismatch") {
			return nil, fmt.Errorf("%w: %w", ErrIncompatible, err)
		}

		return nil, err
	}

	if err := checkVersion(c.svc.Version); err != nil {
		c.svc.Close()
		closeFn(ErrClosed)

		return nil, fmt.Errorf("lnd at %s: %w", cfg.Host, err)
	}
	c.params = c.svc.ChainParams
	c.pubKey = c.svc.NodePubkey
	c.routerSvc = c.svc.Router
	c.lightningSvc = c.svc.Client
	log.Info("connected to lnd", "alias", c.svc.NodeAlias,
		"pubkey", c.pubKey, "version",
		lndclient.VersionString(c.svc.Version))
	for _, b := range BugsOf(c.svc.Version) {
		log.Warn("this lnd release has a known bug", "bug", b.Name,
			"version", lndclient.VersionString(c.svc.Version), "harm", b.Harm)
	}

	return c, nil
}

// checkVersion refuses an lnd older than minVersion or without one of the
// requiredTags, naming what needs it.
func checkVersion(v *verrpc.Version) error {
	if v == nil {
		return fmt.Errorf("%w: lnd did not report its version",
			ErrIncompatible)
	}
	if err := lndclient.AssertVersionCompatible(v, minVersion); err != nil {
		return fmt.Errorf("%w: lnd %s is too old, asynclsp needs %s or "+
			"newer", ErrIncompatible, lndclient.VersionString(v),
			lndclient.VersionString(minVersion))
	}

	have := make(map[string]bool, len(v.BuildTags))
	for _, t := range v.BuildTags {
		have[t] = true
	}
	var missing []string
	for _, r := range requiredTags {
		if !have[r.tag] {
			missing = append(missing, fmt.Sprintf(
				"%q (needed for %s)", r.tag, r.need,
			))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: lnd %s was built without the build "+
			"tags %s", ErrIncompatible, lndclient.VersionString(v),
			strings.Join(missing, ", "))
	}

	return nil
}

// PubKey returns the node's identity key (read once at Connect).
func (c *Client) PubKey() route.Vertex {
	return c.pubKey
}

// ChainParams returns the parameters of lnd's network.
func (c *Client) ChainParams() *chaincfg.Params {
	return c.params
}

// Close stops every subscription, waits for their goroutines and closes
// the connection. It is safe to call more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.close(ErrClosed)
		c.mu.Unlock()
		c.wg.Wait()
		if c.svc != nil {
			c.svc.Close()
		}
		c.log.Debug("lnd client closed")
	})

	return nil
}

// scope returns a context that ends with ctx or with Close, whichever is
// first. Its cause is ErrClosed after Close.
func (c *Client) scope(ctx context.Context) (context.Context,
	context.CancelFunc) {

	ctx, cancel := context.WithCancelCause(ctx)
	if c.closed.Err() != nil {
		// AfterFunc would cancel too, but later, on its own goroutine.
		cancel(ErrClosed)
	}
	stop := context.AfterFunc(c.closed, func() { cancel(ErrClosed) })

	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// ctxErr returns why ctx ended: ErrClosed after Close, else ctx.Err().
func ctxErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), ErrClosed) {
		return ErrClosed
	}

	return ctx.Err()
}

// goOwned runs fn on a goroutine owned by the client: Close waits for it.
// After Close it runs nothing and returns ErrClosed.
func (c *Client) goOwned(fn func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Err() != nil {
		return ErrClosed
	}

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()

	return nil
}

// lightning returns lnd's main RPC client and ctx with its macaroon.
func (c *Client) lightning(ctx context.Context) (context.Context,
	lnrpc.LightningClient) {

	ctx, _, cl := c.lightningSvc.RawClientWithMacAuth(ctx)

	return ctx, cl
}

// invoices returns lnd's invoicesrpc client and ctx with its macaroon.
func (c *Client) invoices(ctx context.Context) (context.Context,
	invoicesrpc.InvoicesClient) {

	ctx, _, cl := c.svc.Invoices.RawClientWithMacAuth(ctx)

	return ctx, cl
}

// router returns lnd's routerrpc client and ctx with its macaroon.
func (c *Client) router(ctx context.Context) (context.Context,
	routerrpc.RouterClient) {

	ctx, _, cl := c.routerSvc.RawClientWithMacAuth(ctx)

	return ctx, cl
}

// signer returns lnd's signrpc client and ctx with its macaroon.
func (c *Client) signer(ctx context.Context) (context.Context,
	signrpc.SignerClient) {

	ctx, _, cl := c.svc.Signer.RawClientWithMacAuth(ctx)

	return ctx, cl
}

// chainNotifier returns lnd's chainrpc client and ctx with its macaroon.
func (c *Client) chainNotifier(ctx context.Context) (context.Context,
	chainrpc.ChainNotifierClient) {

	ctx, _, cl := c.svc.ChainNotifier.RawClientWithMacAuth(ctx)

	return ctx, cl
}
