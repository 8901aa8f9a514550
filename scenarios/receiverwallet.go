package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnwire"
)

// ReceiverWallet is dave's wallet as the scenarios drive it, one of two
// kinds: over carol's HTTP API with a token, signing BIP-340 with lnd's
// signrpc (HTTPWallet), or as the field's wallets do, over LSPS0 on his
// lnd's connection to carol, signing with signmessage (StockWallet).
type ReceiverWallet interface {
	// Mailbox lists dave's pending items at carol.
	Mailbox(ctx context.Context) ([]receiverclient.Item, error)

	// SignRelease signs a release of it with dave's node key.
	SignRelease(ctx context.Context, it *receiverclient.Item) (SignedRelease, error)

	// PostRelease hands a signed release to carol, again while she is
	// unavailable, and returns the item as she answered.
	PostRelease(ctx context.Context, rel SignedRelease) (*receiverclient.Item, error)

	// WaitOutcome waits until a released item is settled or canceled.
	WaitOutcome(ctx context.Context, it *receiverclient.Item) (*receiverclient.Item, error)

	// Signs says how the wallet signs, for the demo's story.
	Signs() string
}

// SignedRelease is a release as a wallet hands it to carol: the hex of its
// TLV stream (HTTPWallet), or the text it signed and the signature
// (StockWallet).
type SignedRelease struct {
	Hex             string
	Text, Signature string
}

// HTTPWallet is dave's wallet backend on carol's HTTP API.
type HTTPWallet struct {
	*receiverclient.Client
	cast *Cast
}

// SignRelease implements ReceiverWallet: BIP-340 by dave's lnd.
func (w HTTPWallet) SignRelease(ctx context.Context, it *receiverclient.Item) (SignedRelease, error) {
	hex, err := w.cast.SignRelease(ctx, it)
	return SignedRelease{Hex: hex}, err
}

// PostRelease implements ReceiverWallet (receiverclient.PostReleaseRetry).
func (w HTTPWallet) PostRelease(ctx context.Context, rel SignedRelease) (*receiverclient.Item, error) {
	return w.PostReleaseRetry(ctx, rel.Hex)
}

// Signs implements ReceiverWallet.
func (HTTPWallet) Signs() string { return "BIP-340, tagged, with lnd's signrpc" }

// Mailbox implements ReceiverWallet: asynclsp.list_mailbox.
func (w *StockWallet) Mailbox(ctx context.Context) ([]receiverclient.Item, error) {
	var mb receiverclient.MailboxResponse
	err := w.Call(ctx, "asynclsp.list_mailbox", struct{}{}, &mb)
	return mb.Items, err
}

// Item reads one item: asynclsp.get_item.
func (w *StockWallet) Item(ctx context.Context, it *receiverclient.Item) (*receiverclient.Item, error) {
	var out receiverclient.Item
	err := w.Call(ctx, "asynclsp.get_item", map[string]string{
		"sender_lsp": it.SenderLSP.String(), "hold_id": it.HoldID.String(),
	}, &out)
	return &out, err
}

// SignRelease implements ReceiverWallet: the text carol offers for the
// item, read afresh (it is valid for minutes), signed with lnrpc
// SignMessage.
func (w *StockWallet) SignRelease(ctx context.Context, it *receiverclient.Item) (SignedRelease, error) {
	cur, err := w.Item(ctx, it)
	if err != nil {
		return SignedRelease{}, err
	}
	if cur.Sign == "" {
		return SignedRelease{}, fmt.Errorf("%w: item %s is %s, nothing to sign",
			ErrWrongState, it.HoldID, cur.State)
	}
	sig, err := w.SignMessage(ctx, []byte(cur.Sign))
	return SignedRelease{Text: cur.Sign, Signature: sig}, err
}

// PostRelease implements ReceiverWallet: asynclsp.release_ln, again while
// carol answers -31503 (unavailable) or not at all.
func (w *StockWallet) PostRelease(ctx context.Context, rel SignedRelease) (*receiverclient.Item, error) {
	var out receiverclient.Item
	retry := func(err error) bool {
		var rpc *RPCError
		return errors.As(err, &rpc) && rpc.Code == receiverclient.LSPSUnavailable ||
			errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil ||
			isNotConnected(err)
	}
	err := await.Until(ctx, "carol takes dave's release", PollInterval,
		func(ctx context.Context) (bool, error) {
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := w.Call(callCtx, "asynclsp.release_ln", map[string]string{
				"message": rel.Text, "signature": rel.Signature,
			}, &out)
			return err == nil, err
		}, func(err error) bool { return !retry(err) })
	return &out, err
}

// WaitOutcome implements ReceiverWallet: asynclsp.get_item until the item
// is no longer released.
func (w *StockWallet) WaitOutcome(ctx context.Context, it *receiverclient.Item) (*receiverclient.Item, error) {
	cur := it
	err := poll(ctx, "the outcome of "+it.HoldID.String(), func(ctx context.Context) (bool, error) {
		next, err := w.Item(ctx, it)
		if err != nil {
			return false, err
		}
		cur = next
		return cur.State != receiverclient.StateReleased, nil
	})
	return cur, err
}

// Signs implements ReceiverWallet.
func (*StockWallet) Signs() string {
	return "an ln_signature, with lnd's stock SignMessage"
}

// AddInvoices makes n invoices of amount (0: any) on the wallet's own lnd
// with lnrpc AddInvoice (private, so they carry a route hint through
// carol) and uploads them with asynclsp.add_invoices.
func (w *StockWallet) AddInvoices(ctx context.Context, n int, amount lnwire.MilliSatoshi,
	expiry time.Duration) (*receiverclient.UploadResponse, error) {

	invoices := make([]string, n)
	for i := range invoices {
		inv, err := w.ln.AddInvoice(ctx, newInvoice(amount, expiry))
		if err != nil {
			return nil, fmt.Errorf("%s: AddInvoice: %w", w.node.Name, err)
		}
		invoices[i] = inv.PaymentRequest
	}
	var up receiverclient.UploadResponse
	err := w.Call(ctx, "asynclsp.add_invoices", map[string][]string{"invoices": invoices}, &up)
	return &up, err
}

// newInvoice is the invoice a receiver's wallet stocks its LSP with:
// private, so that it carries a route hint through the LSP.
func newInvoice(amount lnwire.MilliSatoshi, expiry time.Duration) *lnrpc.Invoice {
	return &lnrpc.Invoice{
		ValueMsat: int64(amount), Expiry: int64(expiry.Seconds()),
		Private: true, Memo: "asynclsp scenarios",
	}
}
