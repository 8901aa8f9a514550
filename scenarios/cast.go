package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// InvoiceLife is how long dave's invoices last: carol keeps only invoices
// with more than a day left (receiver.mininvoicelife).
const InvoiceLife = 7 * 24 * time.Hour

// AliceWallet is the name of alice's wallet token at bob: the owner of her
// payments.
const AliceWallet = "alice"

// Launcher starts a daemon: lsp.Start for a program, lsp.StartT wrapped
// for a test.
type Launcher func(ctx context.Context, opts lsp.Options) (*lsp.Daemon, error)

// Options shape a Cast.
type Options struct {
	// Bob and Carol are further settings of their daemons
	// ("sender.hold-cltv-delta=400", see lsp.Options.Settings).
	Bob, Carol []string

	// Invoices is how many invoices dave uploads to carol; default 20.
	Invoices int

	// Webhooks runs a webhook receiver for dave's wallet and registers
	// its URL with carol.
	Webhooks bool

	// NATSURL is an external NATS server both daemons use, each creating
	// its own inbound stream there. Empty: bob's embedded server, which
	// carol uses too.
	NATSURL string

	// Tag is appended to the daemons' names and folders ("bob-ext"), so
	// that a second cast can run on the same network.
	Tag string

	// LogLevel is both daemons' log level; default debug (lsp.Options).
	LogLevel string

	// Stock makes dave's wallet a wallet of the field (StockWallet): it
	// speaks LSPS0 to carol over his lnd's connection with lnd's stock
	// RPCs, registers its webhook with lsps5.set_webhook and signs with
	// signmessage; no HTTP, no token. Cast.Dave is nil then.
	Stock bool
}

// Cast is the cast of DESIGN.md on a regtest network: bob's asynclspd
// (sender role, with the embedded NATS server), carol's (receiver role,
// on bob's NATS), alice's wallet backend at bob and dave's at carol.
type Cast struct {
	Net        *regtest.Network
	Bob, Carol *lsp.Daemon

	// Wallet is alice's wallet backend: bob's sender API, with a wallet
	// token bob's operator issued for "alice" (her cancels are
	// canceled_by_sender).
	Wallet *senderclient.Client

	// Operator is bob's operator on his sender API, with the admin token:
	// it sees every wallet's payments, and its cancels are
	// canceled_by_operator.
	Operator *senderclient.Client

	// Dave is dave's wallet backend on carol's HTTP API, signing with
	// dave's lnd; nil with Options.Stock.
	Dave *receiverclient.Client

	// Stock is dave's wallet on LSPS0 with Options.Stock, else nil.
	// RedialStock opens it again after dave's lnd restarted.
	Stock *StockWallet

	// Receiver is dave's wallet, whichever kind it is.
	Receiver ReceiverWallet

	// DaveKey is dave's node key.
	DaveKey onionmsg.NodeKey

	// Hooks receives the webhooks carol sends dave's wallet (nil without
	// Options.Webhooks).
	Hooks *WebhookSink

	// Uploaded is carol's answer to dave's invoices.
	Uploaded *receiverclient.UploadResponse

	// sent are the payments Create made (Sent).
	sentMu sync.Mutex
	sent   []Sent

	// carolWaits: RestartCarol started carol while bob was down; she is
	// ready only once bob's NATS server is back, and RestartBob waits for
	// her then.
	carolWaits bool

	// externalNATS: both daemons are on Options.NATSURL, which outlives
	// either of them: a restart of bob takes no server down.
	externalNATS bool
}

// reconnectsMetric counts a daemon's reconnections to NATS.
const reconnectsMetric = "asynclsp_bus_reconnects_total"

// Assemble starts bob's and carol's daemons on net with start, registers
// dave with carol and uploads his invoices (dave's lnd must be running).
// On failure it stops what it started.
func Assemble(ctx context.Context, net *regtest.Network, opts Options,
	start Launcher) (_ *Cast, err error) {

	if opts.Invoices == 0 {
		opts.Invoices = 20
	}
	c := &Cast{Net: net, externalNATS: opts.NATSURL != ""}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close(context.Background()))
		}
	}()

	c.Bob, err = start(ctx, lsp.Options{
		Name: tagged(net.Bob, opts.Tag), Node: net.Bob,
		Roles:   []string{lsp.RoleSender},
		NATSURL: opts.NATSURL, CreateStream: opts.NATSURL != "",
		Settings: opts.Bob, LogLevel: opts.LogLevel,
	})
	if err != nil {
		return nil, err
	}
	c.Carol, err = start(ctx, lsp.Options{
		Name: tagged(net.Carol, opts.Tag), Node: net.Carol,
		Roles:   []string{lsp.RoleReceiver},
		NATSURL: c.Bob.NATSURL, CreateStream: true, Settings: opts.Carol,
		LogLevel: opts.LogLevel,
	})
	if err != nil {
		return nil, err
	}
	if c.Wallet, err = c.Bob.SenderClient(ctx, AliceWallet); err != nil {
		return nil, err
	}
	if c.Operator, err = c.Bob.OperatorClient(); err != nil {
		return nil, err
	}

	if c.DaveKey, err = onionmsg.NewNodeKey(net.Dave.PubKey[:]); err != nil {
		return nil, err
	}
	hook := ""
	if opts.Webhooks {
		if c.Hooks, err = StartWebhookSink(c.Carol.NodeKey); err != nil {
			return nil, err
		}
		hook = c.Hooks.URL
	}
	if opts.Stock {
		err = c.assembleStock(ctx, hook, opts.Invoices)
	} else {
		err = c.assembleHTTP(ctx, hook, opts.Invoices)
	}
	if err != nil {
		return nil, err
	}
	if c.Uploaded.Accepted != opts.Invoices {
		return nil, fmt.Errorf("carol accepted %d of dave's %d invoices: %+v",
			c.Uploaded.Accepted, opts.Invoices, c.Uploaded.Results)
	}

	return c, nil
}

// assembleHTTP registers dave with carol over her HTTP API (a challenge
// signed BIP-340 by his lnd) with the webhook, and uploads his invoices.
func (c *Cast) assembleHTTP(ctx context.Context, hook string, invoices int) error {
	var err error
	c.Dave, err = c.Carol.ReceiverClient(c.DaveKey, c.Net.Dave.Client)
	if err != nil {
		return err
	}
	c.Receiver = HTTPWallet{c.Dave, c}
	if _, err := c.Dave.Register(ctx, hook); err != nil {
		return fmt.Errorf("dave registers with carol: %w", err)
	}
	c.Uploaded, err = c.Dave.Refill(ctx, InvoiceMaker{c.Net.Dave.Client},
		invoices, 0, InvoiceLife, 0)
	if err != nil {
		return fmt.Errorf("dave uploads invoices: %w", err)
	}
	return nil
}

// StockApp is the app_name dave's stock wallet registers its webhook under.
const StockApp = "dave's wallet"

// assembleStock has dave's wallet reach carol as the field's wallets do:
// LSPS0 over his lnd's connection, lsps5.set_webhook, and
// asynclsp.add_invoices with invoices made by lnrpc AddInvoice.
func (c *Cast) assembleStock(ctx context.Context, hook string, invoices int) error {
	if err := c.RedialStock(ctx); err != nil {
		return err
	}
	if hook != "" {
		err := c.Stock.Call(ctx, "lsps5.set_webhook",
			map[string]string{"app_name": StockApp, "webhook": hook}, nil)
		if err != nil {
			return fmt.Errorf("dave sets his webhook at carol: %w", err)
		}
	}
	var err error
	c.Uploaded, err = c.Stock.AddInvoices(ctx, invoices, 0, InvoiceLife)
	if err != nil {
		return fmt.Errorf("dave uploads invoices: %w", err)
	}
	return nil
}

// RedialStock opens dave's stock wallet again (after his lnd restarted:
// its subscription ended with it), once his lnd is connected to carol.
func (c *Cast) RedialStock(ctx context.Context) error {
	if c.Stock != nil {
		_ = c.Stock.Close()
	}
	var err error
	c.Stock, err = DialStockWallet(ctx, c.Net.Dave, c.Net.Carol.PubKey)
	if err != nil {
		return fmt.Errorf("dave's wallet reaches carol over LSPS0: %w", err)
	}
	c.Receiver = c.Stock
	return nil
}

// tagged is a daemon's name: its node's, with tag appended if any.
func tagged(n *regtest.Node, tag string) string {
	if tag == "" {
		return n.Name
	}
	return n.Name + "-" + tag
}

// Close stops the webhook receiver and both daemons (SIGTERM), carol first.
// It is safe to call more than once.
func (c *Cast) Close(ctx context.Context) error {
	var errs []error
	if c.Hooks != nil {
		errs = append(errs, c.Hooks.Close(ctx))
	}
	if c.Stock != nil {
		_ = c.Stock.Close() // dave's lnd may be gone: nothing to report
		c.Stock = nil
	}
	for _, d := range []*lsp.Daemon{c.Carol, c.Bob} {
		if d != nil {
			errs = append(errs, d.Stop(ctx))
		}
	}

	return errors.Join(errs...)
}

// InvoiceMaker makes dave's invoices on his own lnd: private, so each
// carries a route hint over his private channel with carol.
type InvoiceMaker struct {
	Client *lnd.Client
}

// MakeInvoice implements receiverclient.InvoiceMaker.
func (m InvoiceMaker) MakeInvoice(ctx context.Context,
	amount lnwire.MilliSatoshi, expiry time.Duration) (string, error) {

	inv, err := m.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: amount, Expiry: expiry, Private: true,
		Memo: "asynclsp scenarios",
	})

	return inv.PaymentRequest, err
}

// RestartBob starts bob's daemon again after Bob.Stop or Bob.Kill, and
// waits until carol, if she runs, is connected to its NATS server again
// (bob's embedded server went down with it), so that carol answers and
// relays again. It works whatever was restarted before, in any order. On
// an external NATS server (Options.NATSURL) nobody lost theirs: it only
// waits for bob.
func (c *Cast) RestartBob(ctx context.Context) error {
	if c.Bob.Running() {
		return fmt.Errorf("restart bob: still running (pid %d)", c.Bob.PID())
	}
	if c.externalNATS {
		return c.Bob.Restart(ctx)
	}
	carolWaits := c.carolWaits && c.Carol.Running()
	c.carolWaits = false
	// Carol's reconnections so far, read while bob's server is down: any
	// later one is to his new server. (A count remembered from before
	// would mean nothing after a restart of carol: each process counts
	// from 0.)
	var links float64
	carolLinked := c.Carol.Running() && !carolWaits
	if carolLinked {
		var err error
		if links, err = c.Carol.Metric(ctx, reconnectsMetric); err != nil {
			return fmt.Errorf("carol's reconnections before bob's "+
				"restart: %w", err)
		}
	}
	if err := c.Bob.Restart(ctx); err != nil {
		return err
	}
	switch {
	case carolWaits:
		// Her first connection can only be to bob's new server.
		return c.Carol.WaitReady(ctx)
	case !carolLinked:
		return nil // carol is down: RestartCarol connects her
	}
	err := poll(ctx, "carol back on bob's NATS", func(ctx context.Context) (bool, error) {
		n, err := c.Carol.Metric(ctx, reconnectsMetric)
		return n > links, err
	})
	if err != nil {
		return err
	}

	return c.Carol.WaitReady(ctx)
}

// RestartCarol starts carol's daemon again after Carol.Stop or Carol.Kill.
// With bob running, or on an external NATS server, it waits until she is
// ready (connected to NATS); with bob's embedded server down it returns at
// once, and RestartBob waits for her.
func (c *Cast) RestartCarol(ctx context.Context) error {
	if c.Bob.Running() || c.externalNATS {
		return c.Carol.Restart(ctx)
	}
	if err := c.Carol.Relaunch(); err != nil {
		return err
	}
	c.carolWaits = true

	return nil
}
