package ctl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	rclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

type payCmd struct {
	app            *app
	Receiver       string        `long:"receiver" description:"The receiver's node key" required:"true"`
	ReceiverLSP    string        `long:"receiver-lsp" description:"The node key of the receiver's LSP" required:"true"`
	Amt            uint64        `long:"amt" description:"Satoshis the receiver gets (the sender pays them plus the LSP's fee)"`
	AmtMsat        uint64        `long:"amt-msat" description:"The amount in millisatoshis, instead of --amt"`
	MaxHold        time.Duration `long:"max-hold" description:"Longest the payment may be held, e.g. 48h (capped by the LSP)"`
	RetryPolicy    string        `long:"retry-policy" description:"How the LSP retries the payment to the receiver" choice:"patient" choice:"fast-fail"`
	IdempotencyKey string        `long:"idempotency-key" description:"Makes the request safe to repeat: a repeat returns the same payment"`
}

func (c *payCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	amount := c.AmtMsat
	switch {
	case c.Amt > 0 && c.AmtMsat > 0:
		return fmt.Errorf("set --amt or --amt-msat, not both")
	case c.Amt > 0:
		amount = c.Amt * 1000
	case amount == 0:
		return fmt.Errorf("--amt (or --amt-msat) is required")
	}
	cl, err := c.app.sender()
	if err != nil {
		return err
	}
	p, _, err := cl.CreatePayment(c.app.ctx, senderclient.CreatePaymentRequest{
		ReceiverKey: c.Receiver, ReceiverLSP: c.ReceiverLSP, AmountMsat: amount,
		MaxHold: c.MaxHold, RetryPolicy: c.RetryPolicy, IdempotencyKey: c.IdempotencyKey,
	})
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, p)
	}
	return fields(c.app.out, "id", p.ID, "state", string(p.State),
		"amount_sat", sat(p.AmountMsat), "fee_sat", sat(p.FeeMsat),
		"pay_sat", sat(p.HoldAmountMsat), "deadline", when(p.DeadlineTime),
		"hold_invoice", p.HoldInvoice)
}

// receiverCmd is the receiver commands' shared options: the receiver's
// own lnd, and its registration.
type receiverCmd struct {
	Lnd    lnd.Config `group:"lnd" namespace:"lnd"`
	Token  string     `long:"receiver-token" description:"The token an earlier registration printed; without it the receiver registers (again) first"`
	LSPKey string     `long:"lsp-key" description:"The receiver LSP's node key: refuse to sign a registration challenge of another LSP"`
}

// defaultLndOptions are lncli's defaults; the macaroon follows the network.
func defaultLndOptions() lnd.Config {
	home, _ := os.UserHomeDir()
	return lnd.Config{Host: "localhost:10009", Network: "mainnet",
		TLSCertPath: filepath.Join(home, ".lnd", "tls.cert"),
		RetryFor:    10 * time.Second}
}

// receiver is the receiver's lnd and its client of the receiver LSP.
type receiver struct {
	lnd    *lnd.Client
	key    onionmsg.NodeKey
	client *rclient.Client
}

func (r *receiver) Close() { r.lnd.Close() }

// connect dials the receiver's lnd and makes its client, registering first
// when no token was given.
func (rc *receiverCmd) connect(a *app, register bool) (*receiver, error) {
	cfg := rc.Lnd
	if cfg.MacaroonPath == "" && cfg.MacaroonDir == "" {
		home, _ := os.UserHomeDir()
		cfg.MacaroonPath = filepath.Join(home, ".lnd", "data", "chain", "bitcoin",
			cfg.Network, "admin.macaroon")
	}
	cfg.Logger = slog.New(slog.NewTextHandler(a.errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	node, err := lnd.Connect(a.ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("the receiver's lnd (--lnd.*): %w", err)
	}
	pub := node.PubKey()
	key, err := onionmsg.NewNodeKey(pub[:])
	if err != nil {
		node.Close()
		return nil, err
	}
	var lspKey onionmsg.NodeKey
	if rc.LSPKey != "" {
		if lspKey, err = onionmsg.ParseNodeKey(rc.LSPKey); err != nil {
			node.Close()
			return nil, fmt.Errorf("--lsp-key: %w", err)
		}
	}
	hc, err := a.httpClient(90 * time.Second) // long-polls wait up to a minute
	if err != nil {
		node.Close()
		return nil, err
	}
	cl, err := rclient.New(rclient.Config{BaseURL: a.baseURL(), NodeKey: key,
		Signer: node, LSPKey: lspKey, Token: rc.Token, HTTPClient: hc, Clock: a.clock})
	if err != nil {
		node.Close()
		return nil, err
	}
	r := &receiver{lnd: node, key: key, client: cl}
	if register && rc.Token == "" {
		if _, err := cl.Register(a.ctx, ""); err != nil {
			r.Close()
			return nil, fmt.Errorf("register: %w", err)
		}
		fmt.Fprintf(a.errOut, "registered %s; its token (--receiver-token): %s\n", key, cl.Token())
	}
	return r, nil
}

type receiverRegisterCmd struct {
	app     *app
	rc      *receiverCmd
	Webhook string `long:"webhook" description:"URL the LSP calls to wake the receiver (https, or http to loopback)"`
}

func (c *receiverRegisterCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	r, err := c.rc.connect(c.app, false)
	if err != nil {
		return err
	}
	defer r.Close()
	reg, err := r.client.Register(c.app.ctx, c.Webhook)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, reg)
	}
	return fields(c.app.out, "node_key", reg.NodeKey.String(), "token", reg.Token,
		"webhook", dash(reg.WebhookURL))
}

type receiverUploadCmd struct {
	app    *app
	rc     *receiverCmd
	Count  int           `long:"count" description:"How many invoices to make and upload" default:"10"`
	Amt    uint64        `long:"amt" description:"Fixed amount of each invoice in satoshis; 0 for amountless ones"`
	Expiry time.Duration `long:"expiry" description:"How long the invoices stay valid (the LSP refuses short-lived ones)" default:"168h"`
}

func (c *receiverUploadCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if c.Count < 1 {
		return fmt.Errorf("--count must be at least 1")
	}
	r, err := c.rc.connect(c.app, true)
	if err != nil {
		return err
	}
	defer r.Close()
	resp, err := r.client.Refill(c.app.ctx, invoiceMaker{r.lnd}, c.Count,
		lnwire.MilliSatoshi(c.Amt*1000), c.Expiry, 100)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, resp)
	}
	if err := fields(c.app.out, "accepted", strconv.Itoa(resp.Accepted),
		"rejected", strconv.Itoa(resp.Rejected),
		"available", strconv.Itoa(resp.Counts.Available),
		"reserved", strconv.Itoa(resp.Counts.Reserved),
		"expired", strconv.Itoa(resp.Counts.Expired)); err != nil {
		return err
	}
	return printRejected(c.app.out, resp.Results)
}

func printRejected(w io.Writer, results []rclient.InvoiceResult) error {
	var t *table
	for _, res := range results {
		if res.Accepted {
			continue
		}
		if t == nil {
			t = newTable(w, "INDEX", "REASON", "MESSAGE")
		}
		t.row(strconv.Itoa(res.Index), res.Reason, res.Message)
	}
	if t == nil {
		return nil
	}
	return t.flush()
}

// invoiceMaker makes the receiver's invoices on its lnd, with route hints
// for its private channel to the LSP.
type invoiceMaker struct{ lnd *lnd.Client }

func (m invoiceMaker) MakeInvoice(ctx context.Context, amount lnwire.MilliSatoshi, expiry time.Duration) (string, error) {
	inv, err := m.lnd.AddInvoice(ctx, lnd.InvoiceRequest{ValueMsat: amount,
		Memo: "asynclsp", Expiry: expiry, Private: true})
	if err != nil {
		return "", err
	}
	return inv.PaymentRequest, nil
}

type receiverOnlineCmd struct {
	app  *app
	rc   *receiverCmd
	Wait time.Duration `long:"wait" description:"Wait this long for a first payment if the mailbox is empty"`
	TTL  time.Duration `long:"ttl" description:"How long each signed release stays valid" default:"10m"`
}

func (c *receiverOnlineCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	r, err := c.rc.connect(c.app, true)
	if err != nil {
		return err
	}
	defer r.Close()
	items, err := c.mailbox(r)
	if err != nil {
		return err
	}
	var outcomes []*rclient.Item
	for i := range items {
		it, err := r.client.Release(c.app.ctx, &items[i], c.TTL)
		if err != nil {
			return fmt.Errorf("release of hold %s: %w", items[i].HoldID, err)
		}
		if it, err = r.client.WaitOutcome(c.app.ctx, it); err != nil {
			return fmt.Errorf("outcome of hold %s: %w", items[i].HoldID, err)
		}
		outcomes = append(outcomes, it)
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, rclient.MailboxResponse{Items: deref(outcomes)})
	}
	if len(outcomes) == 0 {
		_, err := fmt.Fprintln(c.app.out, "no payment waiting")
		return err
	}
	t := newTable(c.app.out, "HOLD_ID", "AMOUNT_SAT", "STATE", "REASON", "SENDER_LSP")
	for _, it := range outcomes {
		t.row(it.HoldID.String(), sat(uint64(it.AmountMsat)), it.State, dash(it.Reason),
			short(it.SenderLSP.String()))
	}
	return t.flush()
}

// mailbox reads the pending items, waiting up to --wait for a first one.
func (c *receiverOnlineCmd) mailbox(r *receiver) ([]rclient.Item, error) {
	deadline := c.app.clock.Now().Add(c.Wait)
	for {
		items, err := r.client.Mailbox(c.app.ctx)
		if err != nil || len(items) > 0 || !c.app.clock.Now().Before(deadline) {
			return items, err
		}
		select {
		case <-c.app.clock.TickAfter(time.Second):
		case <-c.app.ctx.Done():
			return nil, c.app.ctx.Err()
		}
	}
}

func deref(items []*rclient.Item) []rclient.Item {
	out := make([]rclient.Item, len(items))
	for i, it := range items {
		out[i] = *it
	}
	return out
}
