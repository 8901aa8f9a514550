package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// settleInvoice settles the hold invoice of a SETTLED hold with its
// preimage, then marks the hold resolved. Settling is idempotent at lnd, so
// a restart between the two only settles again.
func (r *runner) settleInvoice(ctx context.Context) error {
	err := r.m.lnd.SettleInvoice(ctx, *r.hold.Preimage)
	switch {
	case err == nil:
	case errors.Is(err, lnd.ErrInvoiceCanceled), errors.Is(err, lnd.ErrInvoiceNotFound):
		// The receiver was paid but the sender's HTLC is gone: the
		// LSP lost the amount. The margins exist so this never happens;
		// if it does, an operator must know.
		r.log.Error("LOSS: receiver paid but the hold invoice cannot be "+
			"settled", "amount_msat", r.hold.AmountMsat, "err", err)
		r.m.metrics.loss()
	default:
		return err
	}
	return r.resolve(ctx)
}

// cancelInvoice cancels the hold invoice of a CANCELED hold, giving the
// sender its funds back, then marks the hold resolved.
func (r *runner) cancelInvoice(ctx context.Context) error {
	err := r.m.lnd.CancelInvoice(ctx, r.fixed.hash)
	switch {
	case err == nil, errors.Is(err, lnd.ErrInvoiceNotFound):
	case errors.Is(err, lnd.ErrInvoiceSettled):
		r.log.Error("canceled hold's invoice is settled at lnd", "err", err)
	default:
		return err
	}
	return r.resolve(ctx)
}

// resolve tells the receiver LSP how the hold ended, durably (it is sent
// again after a restart until it is stored there), then marks the hold
// resolved. A receiver LSP unreachable for longer than finalOutcomeGiveUp is
// given up on, loudly: its receiver's mailbox item expires by its deadline.
func (r *runner) resolve(ctx context.Context) error {
	status := onionmsg.StatusCanceled
	if r.hold.State == holdstore.StateSettled {
		status = onionmsg.StatusSettled
	}
	tctx, cancel := context.WithTimeout(ctx, r.m.cfg.RequestTimeout)
	err := r.m.net.Send(tctx, r.fixed.receiverLSP, r.outcome(status, r.hold.Reason))
	cancel()
	if err != nil {
		if r.tellingSince.IsZero() {
			r.tellingSince = r.m.clock.Now()
		}
		if r.m.clock.Now().Sub(r.tellingSince) < finalOutcomeGiveUp {
			return fmt.Errorf("telling the receiver LSP the outcome: %w", err)
		}
		r.log.Error("receiver LSP unreachable: giving up telling it the "+
			"outcome", "since", r.tellingSince, "err", err)
	}
	if err := r.m.store.MarkResolved(ctx, r.fixed.id); err != nil {
		return err
	}
	r.hold.Resolved = true
	return nil
}

// finalOutcomeGiveUp bounds how long a hold waits for its receiver LSP to
// take the final outcome before it is resolved anyway.
const finalOutcomeGiveUp = time.Hour

// finished reports a resolved hold in the metrics.
func (r *runner) finished() {
	h := r.hold
	now := r.m.clock.Now()
	r.log.Info("hold resolved", "state", h.State, "reason", h.Reason)
	if !r.heldAt.IsZero() {
		r.m.metrics.timeHeld(now.Sub(r.heldAt))
	}
	if h.State == holdstore.StateSettled && !r.releasedAt.IsZero() {
		r.m.metrics.releaseToSettle(now.Sub(r.releasedAt))
	}
}
