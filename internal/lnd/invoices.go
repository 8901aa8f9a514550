package lnd

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// HoldInvoiceRequest describes a hold invoice: lnd accepts HTLCs for Hash
// and holds them until SettleInvoice or CancelInvoice.
type HoldInvoiceRequest struct {
	// Hash is the payment hash (required).
	Hash lntypes.Hash

	// ValueMsat is the amount; zero makes an amountless invoice.
	ValueMsat lnwire.MilliSatoshi

	// Memo is the description.
	Memo string

	// Expiry is how long the invoice may be paid, in whole seconds; zero
	// means lnd's default (24 hours).
	Expiry time.Duration

	// CltvExpiry is the final CLTV delta the payer must give the HTLC;
	// zero means lnd's default. The payer's --max-cltv-expiry (default
	// 2016) caps what is payable.
	CltvExpiry uint64

	// Private adds route hints for private channels.
	Private bool
}

// InvoiceRequest describes a normal invoice (lnd knows the preimage).
type InvoiceRequest struct {
	// ValueMsat is the amount; zero makes an amountless invoice.
	ValueMsat lnwire.MilliSatoshi

	// Memo is the description.
	Memo string

	// Expiry is how long the invoice may be paid, in whole seconds; zero
	// means lnd's default (24 hours).
	Expiry time.Duration

	// CltvExpiry is the final CLTV delta; zero means lnd's default.
	CltvExpiry uint64

	// Private adds route hints for private channels, so a payer can reach
	// a node whose only channels are private.
	Private bool

	// Preimage is optional; lnd draws one if it is nil.
	Preimage *lntypes.Preimage
}

// AddHoldInvoice adds a hold invoice. Adding a second invoice for the same
// hash fails with ErrInvoiceExists: after an uncertain failure, call
// LookupInvoice to see whether the first attempt went through.
func (c *Client) AddHoldInvoice(ctx context.Context,
	req HoldInvoiceRequest) (AddedInvoice, error) {

	if req.Hash == (lntypes.Hash{}) {
		return AddedInvoice{}, fmt.Errorf("lnd AddHoldInvoice: %w: "+
			"payment hash is required", ErrInvalidRequest)
	}
	expiry, err := seconds(req.Expiry)
	if err != nil {
		return AddedInvoice{}, fmt.Errorf("lnd AddHoldInvoice: %w", err)
	}

	var resp *invoicesrpc.AddHoldInvoiceResp
	err = c.do(ctx, "AddHoldInvoice", func(ctx context.Context) error {
		ctx, cl := c.invoices(ctx)
		var err error
		resp, err = cl.AddHoldInvoice(ctx, &invoicesrpc.AddHoldInvoiceRequest{
			Memo:       req.Memo,
			Hash:       req.Hash[:],
			ValueMsat:  int64(req.ValueMsat),
			Expiry:     expiry,
			CltvExpiry: req.CltvExpiry,
			Private:    req.Private,
		})

		return err
	})
	if err != nil {
		return AddedInvoice{}, err
	}

	return AddedInvoice{
		Hash:           req.Hash,
		PaymentRequest: resp.PaymentRequest,
		AddIndex:       resp.AddIndex,
	}, nil
}

// AddInvoice adds a normal invoice, for which lnd settles HTLCs itself.
func (c *Client) AddInvoice(ctx context.Context,
	req InvoiceRequest) (AddedInvoice, error) {

	expiry, err := seconds(req.Expiry)
	if err != nil {
		return AddedInvoice{}, fmt.Errorf("lnd AddInvoice: %w", err)
	}
	in := &lnrpc.Invoice{
		Memo:       req.Memo,
		ValueMsat:  int64(req.ValueMsat),
		Expiry:     expiry,
		CltvExpiry: req.CltvExpiry,
		Private:    req.Private,
	}
	if req.Preimage != nil {
		in.RPreimage = req.Preimage[:]
	}

	var resp *lnrpc.AddInvoiceResponse
	err = c.do(ctx, "AddInvoice", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.AddInvoice(ctx, in)

		return err
	})
	if err != nil {
		return AddedInvoice{}, err
	}
	hash, err := lntypes.MakeHash(resp.RHash)
	if err != nil {
		return AddedInvoice{}, fmt.Errorf("lnd AddInvoice: hash: %w", err)
	}

	return AddedInvoice{
		Hash:           hash,
		PaymentRequest: resp.PaymentRequest,
		AddIndex:       resp.AddIndex,
	}, nil
}

// SettleInvoice settles the accepted hold invoice whose hash is the hash of
// preimage. Settling an invoice that is already settled succeeds, so it is
// safe to repeat. It fails with ErrInvoiceCanceled if the invoice was
// canceled, ErrInvoiceOpen if no HTLC is accepted yet, and
// ErrInvoiceNotFound if no invoice has that hash.
func (c *Client) SettleInvoice(ctx context.Context,
	preimage lntypes.Preimage) error {

	return c.do(ctx, "SettleInvoice", func(ctx context.Context) error {
		ctx, cl := c.invoices(ctx)
		_, err := cl.SettleInvoice(ctx, &invoicesrpc.SettleInvoiceMsg{
			Preimage: preimage[:],
		})

		return err
	})
}

// CancelInvoice cancels an open or accepted invoice; its accepted HTLCs
// fail back to the payer at once. Canceling an invoice that is already
// canceled succeeds, so it is safe to repeat. It fails with
// ErrInvoiceSettled if the invoice is settled and ErrInvoiceNotFound if no
// invoice has the hash.
func (c *Client) CancelInvoice(ctx context.Context, hash lntypes.Hash) error {
	return c.do(ctx, "CancelInvoice", func(ctx context.Context) error {
		ctx, cl := c.invoices(ctx)
		_, err := cl.CancelInvoice(ctx, &invoicesrpc.CancelInvoiceMsg{
			PaymentHash: hash[:],
		})

		return err
	})
}

// LookupInvoice returns the invoice for hash, or ErrInvoiceNotFound.
func (c *Client) LookupInvoice(ctx context.Context,
	hash lntypes.Hash) (Invoice, error) {

	var resp *lnrpc.Invoice
	err := c.do(ctx, "LookupInvoice", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.LookupInvoice(ctx, &lnrpc.PaymentHash{
			RHash: hash[:],
		})

		return err
	})
	if err != nil {
		return Invoice{}, err
	}
	inv, err := invoiceFromRPC(resp)
	if err != nil {
		return Invoice{}, fmt.Errorf("lnd LookupInvoice: %w", err)
	}

	return inv, nil
}

// ListPendingInvoices returns, in AddIndex order, up to limit of the
// invoices that are OPEN or ACCEPTED (settled and canceled ones are left
// out) and whose AddIndex is above afterAddIndex, each with its HTLCs. To
// read them all, start after 0 and ask again after the last one's
// AddIndex; a page shorter than limit is the last. Each page is one call
// to lnd (ListInvoices with pending_only).
func (c *Client) ListPendingInvoices(ctx context.Context,
	afterAddIndex uint64, limit uint32) ([]Invoice, error) {

	const op = "ListPendingInvoices"
	if limit == 0 {
		return nil, fmt.Errorf("lnd %s: %w: limit must be positive", op,
			ErrInvalidRequest)
	}

	var resp *lnrpc.ListInvoiceResponse
	err := c.do(ctx, op, func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.ListInvoices(ctx, &lnrpc.ListInvoiceRequest{
			PendingOnly: true, IndexOffset: afterAddIndex,
			NumMaxInvoices: uint64(limit),
		})

		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Invoice, 0, len(resp.Invoices))
	for _, in := range resp.Invoices {
		inv, err := invoiceFromRPC(in)
		if err != nil {
			return nil, fmt.Errorf("lnd %s: %w", op, err)
		}
		out = append(out, inv)
	}

	return out, nil
}

// DecodePayReq decodes a BOLT 11 invoice with lnd, which also checks that it
// is for lnd's network.
func (c *Client) DecodePayReq(ctx context.Context,
	payReq string) (PayReq, error) {

	var resp *lnrpc.PayReq
	err := c.do(ctx, "DecodePayReq", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.DecodePayReq(ctx, &lnrpc.PayReqString{
			PayReq: payReq,
		})

		return err
	})
	if err != nil {
		return PayReq{}, err
	}

	return payReqFromRPC(resp)
}

// payReqFromRPC converts lnd's decoded invoice.
func payReqFromRPC(p *lnrpc.PayReq) (PayReq, error) {
	dest, err := route.NewVertexFromStr(p.Destination)
	if err != nil {
		return PayReq{}, fmt.Errorf("lnd DecodePayReq: destination: %w",
			err)
	}
	hash, err := lntypes.MakeHashFromStr(p.PaymentHash)
	if err != nil {
		return PayReq{}, fmt.Errorf("lnd DecodePayReq: hash: %w", err)
	}

	return PayReq{
		Destination: dest,
		Hash:        hash,
		AmountMsat:  lnwire.MilliSatoshi(p.NumMsat),
		Timestamp:   time.Unix(p.Timestamp, 0),
		Expiry:      time.Duration(p.Expiry) * time.Second,
		CltvExpiry:  uint64(p.CltvExpiry),
		Description: p.Description,
		RouteHints:  len(p.RouteHints),
	}, nil
}

// invoiceFromRPC converts lnd's invoice.
func invoiceFromRPC(in *lnrpc.Invoice) (Invoice, error) {
	hash, err := lntypes.MakeHash(in.RHash)
	if err != nil {
		return Invoice{}, fmt.Errorf("invoice hash %s: %w",
			hex.EncodeToString(in.RHash), err)
	}
	out := Invoice{
		Hash:           hash,
		PaymentRequest: in.PaymentRequest,
		Memo:           in.Memo,
		ValueMsat:      lnwire.MilliSatoshi(in.ValueMsat),
		AmountPaidMsat: lnwire.MilliSatoshi(in.AmtPaidMsat),
		CreatedAt:      time.Unix(in.CreationDate, 0),
		Expiry:         time.Duration(in.Expiry) * time.Second,
		CltvExpiry:     in.CltvExpiry,
		Private:        in.Private,
		AddIndex:       in.AddIndex,
		HTLCs:          make([]InvoiceHTLC, 0, len(in.Htlcs)),
	}

	switch in.State {
	case lnrpc.Invoice_OPEN:
		out.State = InvoiceOpen
	case lnrpc.Invoice_ACCEPTED:
		out.State = InvoiceAccepted
	case lnrpc.Invoice_SETTLED:
		out.State = InvoiceSettled
	case lnrpc.Invoice_CANCELED:
		out.State = InvoiceCanceled
	default:
		return Invoice{}, fmt.Errorf("invoice %v: unknown state %v",
			hash, in.State)
	}

	// lnd reports the preimage of a hold invoice only once settled; a
	// nil or zero preimage means unknown.
	if len(in.RPreimage) == lntypes.PreimageSize {
		pre, err := lntypes.MakePreimage(in.RPreimage)
		if err == nil && pre != (lntypes.Preimage{}) {
			out.Preimage = &pre
		}
	}

	for _, h := range in.Htlcs {
		htlc := InvoiceHTLC{
			ChanID:       h.ChanId,
			HTLCIndex:    h.HtlcIndex,
			AmountMsat:   lnwire.MilliSatoshi(h.AmtMsat),
			MPPTotalMsat: lnwire.MilliSatoshi(h.MppTotalAmtMsat),
			AcceptHeight: uint32(h.AcceptHeight),
			ExpiryHeight: uint32(h.ExpiryHeight),
		}
		switch h.State {
		case lnrpc.InvoiceHTLCState_ACCEPTED:
			htlc.State = HTLCAccepted
		case lnrpc.InvoiceHTLCState_SETTLED:
			htlc.State = HTLCSettled
		case lnrpc.InvoiceHTLCState_CANCELED:
			htlc.State = HTLCCanceled
		}
		out.HTLCs = append(out.HTLCs, htlc)
	}

	// lnd lists HTLCs in map order; sort them so snapshots compare.
	slices.SortFunc(out.HTLCs, func(a, b InvoiceHTLC) int {
		if c := cmp.Compare(a.ChanID, b.ChanID); c != 0 {
			return c
		}

		return cmp.Compare(a.HTLCIndex, b.HTLCIndex)
	})

	return out, nil
}

// seconds converts an invoice expiry to whole seconds.
func seconds(d time.Duration) (int64, error) {
	if d < 0 || d%time.Second != 0 {
		return 0, fmt.Errorf("%w: expiry %v is not a whole number of "+
			"seconds", ErrInvalidRequest, d)
	}

	return int64(d / time.Second), nil
}
