package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/console"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp"
	rclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/senderlsp"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
	"github.com/lightningnetwork/lnd/zpay32"
	"github.com/prometheus/client_golang/prometheus"
)

// Key indexes of the in-process cast (testkit.Key).
const (
	bobIndex   = 1
	carolIndex = 2
	daveIndex  = 3
)

// lspEnv is bob's sender role and carol's receiver role running in-process
// as a daemon runs them (store, bus connection, lspnet node, role, the API
// with the admin endpoints), on the NATS servers at urls; bob's lnd is a
// fake that pays dave's real BOLT11 invoices. dave is a receiver
// registered at carol, signing with his own key.
type lspEnv struct {
	t          *testing.T
	bob, carol *lsp
	bobLnd     *bolt11Lnd
	davePriv   *btcec.PrivateKey
	dave       onionmsg.NodeKey
	daveClient *rclient.Client
}

// lsp is one in-process LSP.
type lsp struct {
	key      onionmsg.NodeKey
	store    *holdstore.Store
	conn     *bus.Conn
	registry *prometheus.Registry
	node     *lspnet.Node
	sender   *senderlsp.Manager
	receiver *receiverlsp.Role
	api      *httptest.Server
	admin    string // an admin bearer token of this LSP
	// height is the chain as the console shows it: bob's lnd; nil for
	// carol.
	height console.Heights
}

// envOptions tune an lspEnv.
type envOptions struct {
	urls     []string
	replicas int
	// ackWait is the bus's AckWait: how soon a message in flight to a
	// lost server is redelivered.
	ackWait time.Duration

	// seeds, if set, are the NKey seed files bob and carol connect with;
	// their streams are then provisioned by the server's operator.
	seeds map[int]string
}

func newLSPEnv(t *testing.T, o envOptions) *lspEnv {
	t.Helper()
	davePriv, dave := testkit.Key(daveIndex)
	_, carolKey := testkit.Key(carolIndex)
	e := &lspEnv{t: t, davePriv: davePriv, dave: dave,
		bobLnd: newBolt11Lnd(carolKey)}

	e.carol = e.startLSP(carolIndex, o, func(l *lsp) {
		opts := receiverlsp.DefaultOptions()
		opts.MaxPendingPerReceiver, opts.MaxPendingPerSender = 500, 500
		opts.SweepInterval, opts.RelayRetry = time.Second, time.Second
		height := &testkit.Height{}
		height.Set(1000)
		priv, _ := testkit.Key(carolIndex)
		role, err := receiverlsp.New(receiverlsp.Config{NodeKey: l.key,
			Network: &chaincfg.RegressionNetParams, Store: l.store, Messenger: l.node,
			Signer: onionmsg.NewPrivKeySigner(priv), Height: height, Options: opts,
			Logger: testkit.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		l.receiver = role
	})
	e.bob = e.startLSP(bobIndex, o, func(l *lsp) {
		cfg := senderlsp.DefaultConfig()
		cfg.QuickRetries = []time.Duration{200 * time.Millisecond, time.Second}
		cfg.RequestTimeout = 5 * time.Second
		m, err := senderlsp.New(cfg, senderlsp.Deps{Store: l.store, Lnd: e.bobLnd,
			Net: l.node, Logger: testkit.Quiet(),
			Metrics: senderlsp.NewMetrics(l.registry, l.store)})
		if err != nil {
			t.Fatal(err)
		}
		l.sender, l.height = m, e.bobLnd
	})
	select {
	case <-e.bob.sender.Running():
	case <-time.After(30 * time.Second):
		t.Fatal("bob's sender role did not start")
	}

	var err error
	e.daveClient, err = rclient.New(rclient.Config{BaseURL: e.carol.api.URL,
		NodeKey: dave, Signer: onionmsg.NewPrivKeySigner(davePriv), LSPKey: e.carol.key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.daveClient.Register(context.Background(), ""); err != nil {
		t.Fatalf("dave registers at carol: %v", err)
	}
	return e
}

// startLSP opens an LSP's store and bus connection, lets role add its role,
// and runs it with its API until the test ends.
func (e *lspEnv) startLSP(index int, o envOptions, role func(*lsp)) *lsp {
	t := e.t
	t.Helper()
	ctx := context.Background()
	priv, key := testkit.Key(index)
	l := &lsp{key: key, registry: prometheus.NewRegistry()}
	var err error
	l.store, err = holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(t.TempDir(), "asynclsp.db"), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.store.Close() })
	metrics, err := bus.NewMetrics(l.registry)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l.conn, err = bus.Connect(cctx, bus.ClientConfig{URLs: o.urls, NodeKey: bus.NodeKey(key),
		NKeySeedFile: o.seeds[index], Metrics: metrics, Logger: testkit.Quiet(),
		ReconnectWait: 50 * time.Millisecond, AckWait: o.ackWait,
		Backoff: func(uint64) time.Duration { return 100 * time.Millisecond }})
	if err != nil {
		t.Fatalf("connect %s: %v", key, err)
	}
	t.Cleanup(func() { l.conn.Close() })
	if o.seeds == nil {
		// A cluster answers stream requests once it has elected a leader.
		eventually(t, 30*time.Second, "inbound stream of "+key.String()[:8], func() error {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return l.conn.EnsureStream(sctx, bus.StreamConfig{Replicas: o.replicas})
		})
	}
	l.node, err = lspnet.New(lspnet.Config{Transport: l.conn,
		Signer: onionmsg.NewPrivKeySigner(priv), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	role(l)

	l.admin, _, err = l.store.CreateToken(ctx, "operator", holdstore.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{}
	var senderAPI *senderlsp.API
	var sender, receiver http.Handler // nil for a role not run
	var senderAdmin senderRole
	if l.sender != nil {
		senderAPI = l.sender.APIHandler(senderlsp.APIConfig{Logger: testkit.Quiet()})
		sender, senderAdmin, roles = senderAPI, l.sender, append(roles, RoleSender)
	}
	if l.receiver != nil {
		receiver, roles = l.receiver.Handler(), append(roles, RoleReceiver)
	}
	admin := newAdminAPI(l.store, senderAdmin, adminclient.Info{Version: Version,
		NodeKey: key.String(), Network: "regtest", Roles: roles, NATS: "external"},
		clock.NewDefaultClock(), testkit.Quiet())
	cons, api, err := withConsole(apiMux(sender, receiver, admin), l.store, l.height, testkit.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	l.api = httptest.NewServer(api)
	t.Cleanup(func() {
		if senderAPI != nil {
			senderAPI.Close()
		}
		l.api.Close()
	})

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	mux := lspnet.NewMux()
	run := func(what string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(runCtx); err != nil {
				t.Errorf("%s of %s: %v", what, key.String()[:8], err)
			}
		})
	}
	if l.sender != nil {
		l.sender.Register(mux)
		run("sender role", l.sender.Run)
	}
	if l.receiver != nil {
		l.receiver.Register(mux)
		run("receiver role", l.receiver.Run)
	}
	run("bus", func(ctx context.Context) error { return l.node.Run(ctx, mux) })
	run("console", cons.Run)
	t.Cleanup(func() { stop(); wg.Wait() })
	return l
}

// upload makes n amountless invoices of dave, valid for a week, routed
// through carol, and uploads them; bob's lnd learns their preimages, as
// paying them would reveal.
func (e *lspEnv) upload(n int) {
	e.t.Helper()
	invoices := make([]string, n)
	for i := range invoices {
		inv, p := testkit.Invoice(e.t, e.davePriv, testkit.InvoiceOpts{
			Expiry: 7 * 24 * time.Hour, Hint: e.carol.key})
		e.bobLnd.Learn(p)
		invoices[i] = inv
	}
	resp, err := e.daveClient.Upload(context.Background(), invoices)
	if err != nil || resp.Accepted != n {
		e.t.Fatalf("upload: %+v, %v", resp, err)
	}
}

// eventually polls cond every 20ms until it returns nil or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bolt11Lnd is bob's lnd for in-process tests: testkit's FakeLnd for the
// hold invoices and channels, and outbound payments of real BOLT11
// invoices, which succeed at once with the preimage the test registered
// (Learn). It counts payments per hash, to catch a hash paid twice.
type bolt11Lnd struct {
	*testkit.FakeLnd

	mu        sync.Mutex
	preimages map[lntypes.Hash]lntypes.Preimage
	payments  map[lntypes.Hash]lnd.Payment
	sends     map[lntypes.Hash]int
}

func newBolt11Lnd(peer onionmsg.NodeKey) *bolt11Lnd {
	return &bolt11Lnd{FakeLnd: testkit.NewFakeLnd(clock.NewDefaultClock(), peer),
		preimages: map[lntypes.Hash]lntypes.Preimage{},
		payments:  map[lntypes.Hash]lnd.Payment{}, sends: map[lntypes.Hash]int{}}
}

// Learn registers what paying the invoice of p's hash reveals.
func (l *bolt11Lnd) Learn(p lntypes.Preimage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.preimages[p.Hash()] = p
}

// Sends is how often SendPayment was called for hash.
func (l *bolt11Lnd) Sends(hash lntypes.Hash) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sends[hash]
}

func (l *bolt11Lnd) DecodePayReq(ctx context.Context, payReq string) (lnd.PayReq, error) {
	inv, err := zpay32.Decode(payReq, &chaincfg.RegressionNetParams)
	if err != nil {
		return lnd.PayReq{}, fmt.Errorf("%w: %v", lnd.ErrInvalidRequest, err)
	}
	pr := lnd.PayReq{Destination: route.NewVertex(inv.Destination),
		Hash: *inv.PaymentHash, Timestamp: inv.Timestamp, Expiry: inv.Expiry(),
		CltvExpiry: inv.MinFinalCLTVExpiry(), RouteHints: len(inv.RouteHints)}
	if inv.MilliSat != nil {
		pr.AmountMsat = *inv.MilliSat
	}
	return pr, nil
}

func (l *bolt11Lnd) SendPayment(ctx context.Context, req lnd.SendPaymentRequest) (*lnd.Subscription[lnd.Payment], error) {
	pr, err := l.DecodePayReq(ctx, req.Invoice)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.sends[pr.Hash]++
	if _, ok := l.payments[pr.Hash]; ok {
		l.mu.Unlock()
		return nil, fmt.Errorf("bolt11Lnd SendPayment: %w", lnd.ErrPaymentExists)
	}
	p, ok := l.preimages[pr.Hash]
	if !ok {
		l.mu.Unlock()
		return nil, fmt.Errorf("bolt11Lnd: no preimage known for %s", pr.Hash)
	}
	value := req.AmountMsat
	if value == 0 {
		value = pr.AmountMsat
	}
	l.payments[pr.Hash] = lnd.Payment{Hash: pr.Hash, Status: lnd.PaymentSucceeded,
		Preimage: p, ValueMsat: value, FeeMsat: 1000,
		HTLCs: []lnd.HTLCAttempt{{Status: lnd.AttemptSucceeded}}}
	l.mu.Unlock()
	return l.TrackPayment(ctx, pr.Hash)
}

func (l *bolt11Lnd) TrackPayment(ctx context.Context, hash lntypes.Hash) (*lnd.Subscription[lnd.Payment], error) {
	l.mu.Lock()
	p, ok := l.payments[hash]
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("bolt11Lnd TrackPayment: %w", lnd.ErrPaymentNotFound)
	}
	sub, feed := lnd.NewFeed[lnd.Payment](ctx)
	go func() {
		if feed.Send(p) {
			feed.End(nil)
			return
		}
		feed.End(context.Canceled)
	}()
	return sub, nil
}
