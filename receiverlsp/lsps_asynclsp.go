package receiverlsp

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// asynclsp's own methods over LSPS0, under its own prefix (listed under no
// LSPS number): the HTTP API's routes, calling the same functions with the
// same params and results. The caller is the peer BOLT8 authenticated (or
// the token's receiver, on POST /v1/lsps0); a peer never registered over
// HTTP becomes a receiver, without a token, on its first call.

// lspsBudget bounds a result: an LSPS0 message is at most
// lsps0.MaxMessageSize bytes (50:90), and the JSON-RPC envelope with the
// request's id (up to a kilobyte of id) takes the rest.
const lspsBudget = lsps0.MaxMessageSize - 1024

func (r *Role) registerAsynclsp(s *lsps0.Server) {
	for _, m := range []struct {
		name string
		h    lsps0.Handler
	}{
		{client.MethodAddInvoices, r.lspsAddInvoices},
		{client.MethodInvoiceStock, r.lspsInvoiceStock},
		{client.MethodListMailbox, r.lspsListMailbox},
		{client.MethodGetItem, r.lspsGetItem},
		{client.MethodRelease, r.lspsRelease},
		{client.MethodReleaseLN, r.lspsReleaseLN},
	} {
		s.Handle(0, m.name, r.lspsCall(r.asReceiver(m.h)))
	}
}

// asReceiver registers the caller as a receiver, without a token, before h
// runs, if it is not one yet.
func (r *Role) asReceiver(h lsps0.Handler) lsps0.Handler {
	return func(ctx context.Context, peer onionmsg.NodeKey, params json.RawMessage) (any, error) {
		_, err := r.store.Receiver(ctx, vertex(peer))
		if errors.Is(err, holdstore.ErrUnknownReceiver) {
			var created bool
			err = r.store.Update(ctx, func(tx *holdstore.Tx) (err error) {
				created, err = tx.EnsureReceiver(vertex(peer))
				return err
			})
			if created {
				r.log.Info("receiver registered over LSPS0", "receiver", peer)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return h(ctx, peer, params)
	}
}

// The asynclsp.* error codes, by the API error each stands for
// (client.LSPSInvalidRequest and the rest; docs/protocol.md has the table).
var lspsCodes = []struct {
	err  error
	code int
}{
	{ErrInvalid, client.LSPSInvalidRequest},
	{ErrForbidden, client.LSPSForbidden},
	{ErrNotFound, client.LSPSNotFound},
	{ErrConflict, client.LSPSConflict},
	{ErrTooLarge, client.LSPSTooLarge},
}

// lspsError maps a method's error to its LSPS0 error: bLIP-55's own for
// lsps5.*, asynclsp's codes for the role's errors, and anything else is
// left for lsps0.Server to answer as -32603 (its detail only logged).
func (r *Role) lspsError(peer onionmsg.NodeKey, err error) error {
	var (
		e  *lsps0.Error
		e5 *lsps5Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &e5):
		return e5.lsps0()
	case errors.Is(err, ErrUnavailable):
		r.log.Error("LSPS0 request failed", "receiver", peer, "err", err)
		return &lsps0.Error{Code: client.LSPSUnavailable,
			Message: "temporarily unavailable; retry"}
	}
	for _, m := range lspsCodes {
		if errors.Is(err, m.err) {
			r.log.Debug("LSPS0 request refused", "receiver", peer, "err", err)
			return &lsps0.Error{Code: m.code, Message: err.Error()}
		}
	}
	return err
}

// asynclsp.add_invoices {invoices}: POST /v1/invoices.
func (r *Role) lspsAddInvoices(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p client.UploadRequest
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	resp, err := r.upload(ctx, who, p.Invoices)
	if err != nil {
		return nil, err
	}
	// A result per invoice is smaller than the invoice, but its message
	// may not be: drop the messages (the reasons stay) if they do not fit.
	if b, _ := json.Marshal(resp); len(b) > lspsBudget {
		for i := range resp.Results {
			resp.Results[i].Message = ""
		}
	}
	return resp, nil
}

// asynclsp.invoice_stock {}: GET /v1/invoices.
func (r *Role) lspsInvoiceStock(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	if err := lsps0.DecodeParams(params, &struct{}{}); err != nil {
		return nil, err
	}
	return r.counts(ctx, who)
}

// asynclsp.list_mailbox {}: GET /v1/mailbox, as many items as fit in one
// message, oldest first; more says others are pending.
func (r *Role) lspsListMailbox(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	if err := lsps0.DecodeParams(params, &struct{}{}); err != nil {
		return nil, err
	}
	items, err := r.mailbox(ctx, who)
	if err != nil {
		return nil, err
	}
	items, more := fitItems(items, lspsBudget)
	return client.MailboxResponse{Items: items, More: more}, nil
}

// fitItems returns the first items whose listing fits in budget bytes, and
// whether any were left out.
func fitItems(items []client.Item, budget int) ([]client.Item, bool) {
	size := len(`{"items":[],"more":true}`)
	for i := range items {
		b, err := json.Marshal(items[i])
		if err != nil {
			return items[:i], true
		}
		if size += len(b) + 1; size > budget {
			return items[:i], true
		}
	}
	return items, false
}

// asynclsp.get_item {sender_lsp, hold_id}: GET /v1/mailbox/{sender_lsp}/{hold_id}.
func (r *Role) lspsGetItem(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p client.GetItemParams
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	sender, err := onionmsg.ParseNodeKey(p.SenderLSP)
	if err != nil {
		return nil, fmt.Errorf("%w: sender_lsp: %v", ErrInvalid, err)
	}
	hold, err := onionmsg.ParseHoldID(p.HoldID)
	if err != nil {
		return nil, fmt.Errorf("%w: hold_id: %v", ErrInvalid, err)
	}
	return r.item(ctx, who, sender, hold, 0, 0)
}

// asynclsp.release {release}: POST /v1/releases.
func (r *Role) lspsRelease(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p client.ReleaseRequest
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(p.Release)
	if err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%w: release must be the hex of its TLV bytes", ErrInvalid)
	}
	return r.release(ctx, who, raw)
}

// asynclsp.release_ln {message, signature}: a mailbox item's Sign text and
// its zbase32 ln_signature.
func (r *Role) lspsReleaseLN(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p client.ReleaseLNParams
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	if p.Message == "" || p.Signature == "" {
		return nil, fmt.Errorf("%w: message and signature are required", ErrInvalid)
	}
	return r.releaseLN(ctx, who, []byte(p.Message), p.Signature)
}

// releaseLN checks a release signed with signmessage and relays it: the
// text is a mailbox item's Sign (onionmsg.ReleaseMessagePrefix and the hex
// of the release's signed bytes), the signature its zbase32 ln_signature.
// From there it is the release of the TLV path, record 242 carrying the
// signature: one check, one relay.
func (r *Role) releaseLN(ctx context.Context, who onionmsg.NodeKey, msg []byte, sig string) (*client.Item, error) {
	rel, err := onionmsg.ReleaseFromLNMessage(msg, sig)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	raw, err := rel.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return r.release(ctx, who, raw)
}

// releaseText is what a wallet signs with signmessage to release the
// pending item it, valid for ReleaseTTL from now; "" for an item no longer
// pending.
func (r *Role) releaseText(it *client.Item) string {
	if it.State != string(holdstore.MailboxPending) {
		return ""
	}
	msg, err := onionmsg.NewRelease(it.Held(), r.clock.Now(), r.opts.ReleaseTTL).LNMessage()
	if err != nil {
		r.log.Error("cannot make a release text", "hold", it.HoldID, "err", err)
		return ""
	}
	return string(msg)
}
