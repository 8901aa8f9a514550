package receiverlsp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// checkInvoice decides whether the BOLT11 invoice s may be kept for the
// receiver at now: signed by the receiver (zpay32 checks the signature
// against the payee key, explicit or recovered), for our network, with a
// route hint through this LSP, not expired and with at least MinInvoiceLife
// left, amountless or with a fixed amount. It returns the invoice to store,
// or why not.
func (r *Role) checkInvoice(s string, receiver onionmsg.NodeKey, now time.Time) (
	*holdstore.ReceiverInvoice, client.InvoiceResult) {

	var res client.InvoiceResult
	refuse := func(reason, format string, args ...any) (
		*holdstore.ReceiverInvoice, client.InvoiceResult) {

		res.Reason, res.Message = reason, fmt.Sprintf(format, args...)
		return nil, res
	}
	if len(s) > onionmsg.MaxInvoiceLen {
		return refuse(client.RejectTooLong, "invoice of %d characters, "+
			"at most %d", len(s), onionmsg.MaxInvoiceLen)
	}
	s = strings.ToLower(strings.TrimSpace(s))
	inv, err := zpay32.Decode(s, r.cfg.Network)
	if err != nil {
		return refuse(client.RejectMalformed, "not a valid %s invoice: %v",
			r.cfg.Network.Name, err)
	}
	hash := client.Hex32(*inv.PaymentHash)
	res.PaymentHash = &hash
	if inv.Destination == nil {
		return refuse(client.RejectMalformed, "no payee key")
	}
	if payee := onionmsg.NodeKeyFromPubKey(inv.Destination); payee != receiver {
		return refuse(client.RejectWrongNode, "the invoice pays %s, not "+
			"the registered receiver", payee)
	}
	expires := inv.Timestamp.Add(inv.Expiry())
	switch {
	case !expires.After(now):
		return refuse(client.RejectExpired, "expired at %s",
			expires.UTC().Format(time.RFC3339))
	case expires.Sub(now) < r.opts.MinInvoiceLife:
		return refuse(client.RejectShortLived, "expires at %s, less than "+
			"%s from now", expires.UTC().Format(time.RFC3339),
			r.opts.MinInvoiceLife)
	}
	if len(inv.BlindedPaymentPaths) > 0 {
		return refuse(client.RejectBlindedPaths, "blinded paths are not "+
			"supported; use a route hint through %s", r.self)
	}
	if !r.hintsThroughUs(inv) {
		return refuse(client.RejectNoRouteHint, "no route hint whose first "+
			"hop is this LSP (%s)", r.self)
	}
	var amount lnwire.MilliSatoshi
	if inv.MilliSat != nil {
		if *inv.MilliSat == 0 {
			return refuse(client.RejectZeroAmount, "a fixed amount of zero")
		}
		amount = *inv.MilliSat
	}
	res.Accepted = true
	return &holdstore.ReceiverInvoice{
		PaymentHash: *inv.PaymentHash,
		ReceiverKey: vertex(receiver),
		Invoice:     s,
		AmountMsat:  amount,
		ExpiresAt:   expires,
	}, res
}

// hintsThroughUs reports whether one of the invoice's route hints starts
// at this LSP's node.
func (r *Role) hintsThroughUs(inv *zpay32.Invoice) bool {
	for _, hint := range inv.RouteHints {
		if len(hint) > 0 && hint[0].NodeID != nil &&
			onionmsg.NodeKeyFromPubKey(hint[0].NodeID) == r.self {
			return true
		}
	}
	return false
}

// upload checks a batch of the receiver's invoices and stores those that
// pass, in one transaction, up to MaxStock available per receiver. Refused
// ones (duplicates included) change nothing.
func (r *Role) upload(ctx context.Context, receiver onionmsg.NodeKey,
	invoices []string) (*client.UploadResponse, error) {

	if len(invoices) == 0 {
		return nil, fmt.Errorf("%w: no invoices", ErrInvalid)
	}
	if len(invoices) > r.opts.MaxUpload {
		return nil, fmt.Errorf("%w: %d invoices, at most %d per upload",
			ErrTooLarge, len(invoices), r.opts.MaxUpload)
	}
	now := r.clock.Now()
	resp := &client.UploadResponse{Results: make([]client.InvoiceResult, len(invoices))}
	checked := make([]*holdstore.ReceiverInvoice, len(invoices))
	for i, s := range invoices {
		checked[i], resp.Results[i] = r.checkInvoice(s, receiver, now)
		resp.Results[i].Index = i
	}
	err := r.store.Update(ctx, func(tx *holdstore.Tx) error {
		resp.Accepted = 0
		stock, err := tx.CountAvailable(vertex(receiver), tx.Now(), r.opts.MaxStock)
		if err != nil {
			return err
		}
		for i, inv := range checked {
			if inv == nil {
				continue
			}
			res := &resp.Results[i]
			if stock >= r.opts.MaxStock {
				res.Accepted, res.Reason = false, client.RejectStockFull
				res.Message = fmt.Sprintf("%d invoices are available "+
					"already, the most this LSP keeps", stock)
				continue
			}
			added, err := tx.AddInvoice(inv)
			if err != nil {
				return err
			}
			res.Accepted, res.Reason, res.Message = added, "", ""
			if !added {
				res.Reason = client.RejectDuplicate
				res.Message = "this payment hash was uploaded before"
				continue
			}
			resp.Accepted++
			stock++
		}
		if stock < r.opts.LowThreshold {
			return nil
		}
		return tx.ClearInvoicesLow(vertex(receiver))
	})
	if err != nil {
		return nil, fmt.Errorf("%w: store invoices: %w", ErrUnavailable, err)
	}
	resp.Rejected = len(invoices) - resp.Accepted
	if resp.Counts, err = r.counts(ctx, receiver); err != nil {
		return nil, err
	}
	r.log.Info("invoices uploaded", "receiver", receiver,
		"accepted", resp.Accepted, "rejected", resp.Rejected,
		"available", resp.Counts.Available)
	return resp, nil
}

// counts returns the receiver's stock of invoices.
func (r *Role) counts(ctx context.Context, receiver onionmsg.NodeKey) (client.InvoiceCounts, error) {
	c, err := r.store.CountInvoices(ctx, vertex(receiver), r.clock.Now())
	if err != nil {
		return client.InvoiceCounts{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return client.InvoiceCounts{
		Available: c.Available, Reserved: c.Reserved, Expired: c.Expired,
		LowThreshold: r.opts.LowThreshold,
	}, nil
}
