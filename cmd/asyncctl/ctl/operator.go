package ctl

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

type getInfoCmd struct{ app *app }

func (c *getInfoCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	info, err := cl.Info(c.app.ctx)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, info)
	}
	return fields(c.app.out, "version", info.Version, "node key", info.NodeKey,
		"network", info.Network, "roles", strings.Join(info.Roles, ", "), "nats", info.NATS)
}

type paymentsListCmd struct {
	app      *app
	States   []string      `long:"state" description:"Only payments in this state (repeat for several)"`
	Receiver string        `long:"receiver" description:"Only payments to this receiver node key"`
	Owner    string        `long:"owner" description:"Only this wallet's payments"`
	Since    time.Duration `long:"since" description:"Only payments created in this last while, e.g. 24h"`
	Limit    int           `long:"limit" description:"Page size, 1 to 1000" default:"100"`
	Cursor   string        `long:"cursor" description:"Next page: the cursor the previous one printed"`
}

func (c *paymentsListCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.sender()
	if err != nil {
		return err
	}
	opts := senderclient.ListOptions{Receiver: c.Receiver, Owner: c.Owner,
		Limit: c.Limit, Cursor: c.Cursor}
	for _, s := range c.States {
		opts.States = append(opts.States, senderclient.State(strings.ToUpper(s)))
	}
	if c.Since > 0 {
		opts.CreatedAfter = c.app.clock.Now().Add(-c.Since)
	}
	page, err := cl.PaymentsPage(c.app.ctx, opts)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, page)
	}
	t := newTable(c.app.out, "ID", "STATE", "REASON", "AMOUNT_SAT", "FEE_SAT", "RECEIVER", "OWNER", "CREATED")
	for _, p := range page.Payments {
		t.row(p.ID, string(p.State), dash(p.Reason), sat(p.AmountMsat), sat(p.FeeMsat),
			short(p.ReceiverKey), p.Owner, when(p.CreatedAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	return nextPage(c.app, page.NextCursor)
}

// nextPage tells how to get the next page, if there is one.
func nextPage(a *app, cursor string) error {
	if cursor != "" {
		_, err := fmt.Fprintf(a.out, "(more: --cursor=%s)\n", cursor)
		return err
	}
	return nil
}

type paymentsShowCmd struct{ app *app }

func (c *paymentsShowCmd) Execute(args []string) error {
	id, err := oneArg(args, "payment id")
	if err != nil {
		return err
	}
	cl, err := c.app.sender()
	if err != nil {
		return err
	}
	p, err := cl.Payment(c.app.ctx, id)
	if err != nil {
		return err
	}
	return showPayment(c.app, p)
}

func showPayment(a *app, p *senderclient.Payment) error {
	if a.opts.JSON {
		return printJSON(a.out, p)
	}
	return fields(a.out,
		"id", p.ID, "state", string(p.State), "reason", dash(p.Reason),
		"amount_sat", sat(p.AmountMsat), "fee_sat", sat(p.FeeMsat),
		"hold_amount_sat", sat(p.HoldAmountMsat), "payment_hash", p.PaymentHash,
		"receiver", p.ReceiverKey, "receiver_lsp", p.ReceiverLSP,
		"owner", p.Owner, "retry_policy", p.RetryPolicy,
		"incoming_expiry", strconv.FormatUint(uint64(p.IncomingExpiry), 10),
		"deadline_height", strconv.FormatUint(uint64(p.DeadlineHeight), 10),
		"deadline_time", when(p.DeadlineTime), "attempts", strconv.Itoa(p.Attempts),
		"created", when(p.CreatedAt), "updated", when(p.UpdatedAt),
		"hold_invoice", p.HoldInvoice)
}

type paymentsCancelCmd struct{ app *app }

func (c *paymentsCancelCmd) Execute(args []string) error {
	id, err := oneArg(args, "payment id")
	if err != nil {
		return err
	}
	cl, err := c.app.sender()
	if err != nil {
		return err
	}
	p, err := cl.Cancel(c.app.ctx, id)
	if err != nil {
		return err
	}
	return showPayment(c.app, p)
}

type receiversCmd struct {
	app    *app
	Limit  int    `long:"limit" description:"Page size, 1 to 1000" default:"100"`
	Cursor string `long:"cursor" description:"Next page: the cursor the previous one printed"`
}

func (c *receiversCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	page, err := cl.Receivers(c.app.ctx, adminclient.PageOptions{Limit: c.Limit, Cursor: c.Cursor})
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, page)
	}
	t := newTable(c.app.out, "NODE_KEY", "AVAILABLE", "EXPIRED", "RESERVED", "PENDING", "WEBHOOK", "REGISTERED")
	for _, r := range page.Receivers {
		t.row(r.NodeKey, strconv.Itoa(r.Invoices.Available), strconv.Itoa(r.Invoices.Expired),
			strconv.Itoa(r.Invoices.Reserved), strconv.Itoa(r.PendingItems),
			dash(r.WebhookURL), when(r.RegisteredAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	return nextPage(c.app, page.NextCursor)
}

type mailboxCmd struct {
	app      *app
	Receiver string   `long:"receiver" description:"Only this receiver's items"`
	States   []string `long:"state" description:"Only items in this state (repeat for several): pending, released, settled, canceled, expired, refused"`
	Limit    int      `long:"limit" description:"Page size, 1 to 1000" default:"100"`
	Cursor   string   `long:"cursor" description:"Next page: the cursor the previous one printed"`
}

func (c *mailboxCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	opts := adminclient.MailboxOptions{Receiver: c.Receiver,
		PageOptions: adminclient.PageOptions{Limit: c.Limit, Cursor: c.Cursor}}
	for _, s := range c.States {
		opts.States = append(opts.States, strings.ToLower(s))
	}
	page, err := cl.Mailbox(c.app.ctx, opts)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, page)
	}
	t := newTable(c.app.out, "HOLD_ID", "STATE", "REASON", "AMOUNT_SAT", "RECEIVER", "SENDER_LSP", "DEADLINE", "CREATED")
	for _, it := range page.Items {
		t.row(it.HoldID, it.State, dash(it.Reason), sat(it.AmountMsat), short(it.ReceiverKey),
			short(it.SenderLSP), when(it.DeadlineTime), when(it.CreatedAt))
	}
	if err := t.flush(); err != nil {
		return err
	}
	return nextPage(c.app, page.NextCursor)
}

type statsCmd struct{ app *app }

func (c *statsCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	st, err := cl.Stats(c.app.ctx)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, st)
	}
	t := newTable(c.app.out, "WHAT", "STATE", "COUNT")
	for _, s := range []string{"CREATED", "HELD", "RELEASED", "FORWARDING", "SETTLED", "CANCELED"} {
		t.row("holds", s, strconv.Itoa(st.Holds.ByState[s]))
	}
	t.row("holds", "pending_sat", sat(st.Holds.PendingAmountMsat))
	for _, s := range adminclient.MailboxStates {
		t.row("mailbox", s, strconv.Itoa(st.Mailbox[s]))
	}
	t.row("invoices", "available", strconv.Itoa(st.Invoices.Available))
	t.row("invoices", "expired", strconv.Itoa(st.Invoices.Expired))
	t.row("invoices", "reserved", strconv.Itoa(st.Invoices.Reserved))
	t.row("receivers", "registered", strconv.Itoa(st.Receivers))
	t.row("tokens", "active", strconv.Itoa(st.Tokens.Active))
	t.row("tokens", "revoked", strconv.Itoa(st.Tokens.Revoked))
	return t.flush()
}

type senderReannounceCmd struct {
	app         *app
	ReceiverLSP string `long:"receiver-lsp" description:"Node key of the receiver LSP that lost its stored messages" required:"true"`
}

func (c *senderReannounceCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	res, err := cl.Reannounce(c.app.ctx, c.ReceiverLSP)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, res)
	}
	what := "held payments"
	if res.Reannounced == 1 {
		what = "held payment"
	}
	_, err = fmt.Fprintf(c.app.out, "%d %s will be announced again to %s\n",
		res.Reannounced, what, c.ReceiverLSP)
	return err
}

type tokensCreateCmd struct {
	app  *app
	Name string `long:"name" description:"Who the token acts for: a wallet token's payments are owned by this name" required:"true"`
	Role string `long:"role" description:"wallet or admin" choice:"wallet" choice:"admin" default:"wallet"`
}

func (c *tokensCreateCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	created, err := cl.CreateToken(c.app.ctx, c.Name, c.Role)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, created)
	}
	return fields(c.app.out, "id", created.Token.ID, "name", created.Token.Name,
		"role", created.Token.Role, "token", created.Bearer,
		"note", "the token is shown this once; hand it over now")
}

type tokensListCmd struct{ app *app }

func (c *tokensListCmd) Execute(args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	toks, err := cl.Tokens(c.app.ctx)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, adminclient.TokenList{Tokens: toks})
	}
	t := newTable(c.app.out, "ID", "NAME", "ROLE", "CREATED", "REVOKED")
	for _, tok := range toks {
		revoked := "-"
		if tok.RevokedAt != nil {
			revoked = when(*tok.RevokedAt)
		}
		t.row(tok.ID, tok.Name, tok.Role, when(tok.CreatedAt), revoked)
	}
	return t.flush()
}

type tokensRevokeCmd struct{ app *app }

func (c *tokensRevokeCmd) Execute(args []string) error {
	id, err := oneArg(args, "token id")
	if err != nil {
		return err
	}
	cl, err := c.app.admin()
	if err != nil {
		return err
	}
	tok, err := cl.RevokeToken(c.app.ctx, id)
	if err != nil {
		return err
	}
	if c.app.opts.JSON {
		return printJSON(c.app.out, tok)
	}
	_, err = fmt.Fprintf(c.app.out, "revoked token %s (%s, %s)\n", tok.ID, tok.Name, tok.Role)
	return err
}
