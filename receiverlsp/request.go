package receiverlsp

import (
	"context"
	"errors"
	"fmt"

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
// ones before it, and the reservation only takes an invoice nobody holds,
// so an invoice is handed out at most once.
//
// The common case costs two statements: the pick-and-reserve, and the
// bounded count for the invoices_low webhook. Retries and refusals look
// further.
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
		inv, err := r.reserveFitting(tx, receiver, sender, hold, req)
		switch {
		case err == nil:
			reply.Invoice = inv.Invoice
			left, err := tx.CountAvailable(receiver, tx.Now(), r.opts.LowThreshold)
			if err != nil || left >= r.opts.LowThreshold {
				return err
			}
			nowLow, err = tx.SetInvoicesLow(receiver, holdstore.LowFine, holdstore.LowOwed)
			return err
		case !errors.Is(err, holdstore.ErrNoInvoice) &&
			!errors.Is(err, holdstore.ErrDuplicate):
			return err
		}
		// A retry finds its reservation.
		inv, err = tx.Reserved(sender, hold)
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
		reply.ErrorCode, err = r.whyNone(tx, receiver, req.Amount)
		reply.ErrorMessage = codeMessage(reply.ErrorCode)
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

// reserveFitting reserves, for the sender LSP's hold, the invoice that fits
// the request: a fixed one of exactly the amount, else an amountless one if
// the amount is within the configured range; of those that expire at or
// after the requested minimum, the one that expires first. ErrNoInvoice if
// none fits; ErrDuplicate if the hold has one already.
func (r *Role) reserveFitting(tx *holdstore.Tx, receiver, sender route.Vertex,
	hold holdstore.ID, req *onionmsg.InvoiceRequest) (*holdstore.ReceiverInvoice, error) {

	inv, err := tx.ReserveFirst(receiver, req.Amount, req.MinExpiry, sender,
		hold, req.Amount)
	if !errors.Is(err, holdstore.ErrNoInvoice) ||
		req.Amount < r.opts.MinAmount || req.Amount > r.opts.MaxAmount {
		return inv, err
	}
	return tx.ReserveFirst(receiver, 0, req.MinExpiry, sender, hold, req.Amount)
}

// whyNone says why no invoice fits: the receiver is unknown, the amount
// is out of range for amountless invoices and no fixed one of it exists, or
// none is left (that lasts long enough).
func (r *Role) whyNone(tx *holdstore.Tx, receiver route.Vertex,
	amount lnwire.MilliSatoshi) (onionmsg.ReplyErrorCode, error) {

	if _, err := tx.Receiver(receiver); errors.Is(err, holdstore.ErrUnknownReceiver) {
		return onionmsg.ReplyUnknownReceiver, nil
	} else if err != nil {
		return 0, err
	}
	if amount >= r.opts.MinAmount && amount <= r.opts.MaxAmount {
		return onionmsg.ReplyNoInvoicesLeft, nil
	}
	// Only a fixed invoice could do; if there is one, it only expires
	// too soon.
	fixed, err := tx.HasFixed(receiver, amount)
	if err != nil || fixed {
		return onionmsg.ReplyNoInvoicesLeft, err
	}
	return onionmsg.ReplyAmountOutOfRange, nil
}

func codeMessage(c onionmsg.ReplyErrorCode) string {
	switch c {
	case onionmsg.ReplyNoInvoicesLeft:
		return "the receiver has no unused invoice that fits"
	case onionmsg.ReplyAmountOutOfRange:
		return "no invoice of the receiver can take this amount"
	case onionmsg.ReplyUnknownReceiver:
		return "this LSP serves no such receiver"
	}
	return ""
}
