package receiverlsp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// errHoldReused: a sender LSP asked again for a hold it has an invoice for,
// but for another receiver or amount. Not a retry: refused.
var errHoldReused = errors.New("hold id reused for another receiver or amount")

// handleInvoiceRequest answers invoice_request from a sender LSP.
func (r *Role) handleInvoiceRequest(ctx context.Context, in *lspnet.Inbound) (onionmsg.Message, error) {
	req, ok := in.Msg.(*onionmsg.InvoiceRequest)
	if !ok {
		return nil, lspnet.Drop(bus.ReasonMalformed,
			fmt.Errorf("%T on the invoice_request subject", in.Msg))
	}
	if err := in.Authentic(); err != nil {
		return nil, err
	}
	reply, err := r.answerInvoiceRequest(ctx, in.From, req)
	if errors.Is(err, errHoldReused) {
		return nil, lspnet.Drop(bus.ReasonMalformed, err)
	}
	return reply, err
}

// answerInvoiceRequest hands the sender LSP one of the receiver's invoices
// for its hold and reserves it, in one transaction, or answers with a coded
// error. A retried request (same sender LSP, hold, receiver and amount)
// gets the same invoice. The single writer makes every reservation see the
// ones before it, so an invoice is handed out at most once.
func (r *Role) answerInvoiceRequest(ctx context.Context, from onionmsg.NodeKey,
	req *onionmsg.InvoiceRequest) (*onionmsg.InvoiceReply, error) {

	var (
		reply    onionmsg.InvoiceReply
		nowLow   bool
		sender   = vertex(from)
		receiver = vertex(req.ReceiverKey)
		hold     = holdstore.ID(req.HoldID)
	)
	err := r.store.Update(ctx, func(tx *holdstore.Tx) error {
		reply, nowLow = onionmsg.InvoiceReply{HoldID: req.HoldID}, false
		inv, err := tx.Reserved(sender, hold)
		switch {
		case err == nil:
			if inv.ReceiverKey != receiver ||
				inv.Reservation.AmountMsat != req.Amount {
				return errHoldReused
			}
			reply.Invoice = inv.Invoice
			return nil
		case !errors.Is(err, holdstore.ErrNoInvoice):
			return err
		}
		if _, err := tx.Receiver(receiver); errors.Is(err, holdstore.ErrUnknownReceiver) {
			reply.ErrorCode = onionmsg.ReplyUnknownReceiver
			reply.ErrorMessage = "this LSP serves no such receiver"
			return nil
		} else if err != nil {
			return err
		}
		inv, code, err := r.pick(tx, receiver, req.Amount, req.MinExpiry)
		if err != nil || code != 0 {
			reply.ErrorCode, reply.ErrorMessage = code, codeMessage(code)
			return err
		}
		if err := tx.Reserve(inv.PaymentHash, sender, hold, req.Amount); err != nil {
			return err
		}
		reply.Invoice = inv.Invoice

		left, err := tx.CountAvailable(receiver, tx.Now())
		if err != nil || left >= r.opts.LowThreshold {
			return err
		}
		nowLow, err = tx.SetInvoicesLow(receiver, holdstore.LowFine, holdstore.LowOwed)
		return err
	})
	if err != nil {
		return nil, err
	}
	if nowLow {
		r.kick()
	}
	if reply.ErrorCode != 0 {
		r.log.Info("no invoice for hold", "hold", req.HoldID, "sender_lsp", from,
			"receiver", req.ReceiverKey, "code", reply.ErrorCode)
	}
	return &reply, nil
}

// pick chooses the invoice for amount that expires at or after minExpiry: a
// fixed one of exactly that amount, else an amountless one if the amount is
// within the configured range; the one that expires first. No invoice gives
// the error code that says why.
func (r *Role) pick(tx *holdstore.Tx, receiver route.Vertex, amount lnwire.MilliSatoshi,
	minExpiry time.Time) (*holdstore.ReceiverInvoice, onionmsg.ReplyErrorCode, error) {

	inv, err := tx.FirstAvailable(receiver, amount, minExpiry)
	if !errors.Is(err, holdstore.ErrNoInvoice) {
		return inv, 0, err
	}
	if amount >= r.opts.MinAmount && amount <= r.opts.MaxAmount {
		inv, err = tx.FirstAvailable(receiver, 0, minExpiry)
		if errors.Is(err, holdstore.ErrNoInvoice) {
			return nil, onionmsg.ReplyNoInvoicesLeft, nil
		}
		return inv, 0, err
	}
	// Out of range for amountless invoices: only a fixed one could do.
	// If the receiver has one of that amount, it only expires too soon.
	fixed, err := tx.HasFixed(receiver, amount)
	switch {
	case err != nil:
		return nil, 0, err
	case fixed:
		return nil, onionmsg.ReplyNoInvoicesLeft, nil
	}
	return nil, onionmsg.ReplyAmountOutOfRange, nil
}

func codeMessage(c onionmsg.ReplyErrorCode) string {
	switch c {
	case onionmsg.ReplyNoInvoicesLeft:
		return "the receiver has no unused invoice that fits"
	case onionmsg.ReplyAmountOutOfRange:
		return "no invoice of the receiver can take this amount"
	}
	return ""
}
