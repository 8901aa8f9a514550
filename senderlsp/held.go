package senderlsp

import (
	"context"
	"errors"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// awaitRelease follows the hold invoice of a CREATED or HELD hold until the
// sender pays it (HELD), lnd cancels it, a release moves the hold on, a
// cancel request or a deadline ends it.
func (r *runner) awaitRelease(ctx context.Context) error {
	sub, err := r.m.lnd.SubscribeSingleInvoice(ctx, r.fixed.hash)
	if errors.Is(err, lnd.ErrInvoiceNotFound) {
		// lnd never made the hold invoice (a crash between recording
		// the hold and creating it, or a failed create): nothing was
		// ever held, nothing needs canceling.
		r.log.Warn("hold invoice unknown to lnd, canceling the hold")
		return r.cancelNow(ctx, holdstore.ReasonInternal)
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	if r.hold.State == holdstore.StateCreated && r.hold.HoldInvoice == "" {
		if err := r.recordHoldInvoice(ctx); err != nil {
			return err
		}
	}
	if r.hold.State == holdstore.StateHeld {
		r.announce(ctx)
	}
	r.checkDeadline(ctx)

	for r.hold.State == holdstore.StateCreated || r.hold.State == holdstore.StateHeld {
		select {
		case inv, ok := <-sub.Updates():
			if !ok {
				return sub.Err()
			}
			if err := r.onInvoice(ctx, inv); err != nil {
				return err
			}
		case ev := <-r.events:
			r.handle(ctx, ev)
		case <-r.pokes:
			r.checkDeadline(ctx)
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// recordHoldInvoice finishes a create that a crash cut short after lnd
// made the hold invoice but before its payment request was recorded: until
// it is, the sender has nothing to pay, and a retried create is refused
// (ErrCreateUnfinished).
func (r *runner) recordHoldInvoice(ctx context.Context) error {
	inv, err := r.m.lnd.LookupInvoice(ctx, r.fixed.hash)
	if err != nil {
		return err
	}
	if err := r.m.store.SetHoldInvoice(ctx, r.fixed.id, inv.PaymentRequest); err != nil {
		return err
	}
	r.hold.HoldInvoice = inv.PaymentRequest
	r.log.Info("hold invoice recorded from lnd: its create was cut short")
	return nil
}

// onInvoice reacts to a state of the hold invoice.
func (r *runner) onInvoice(ctx context.Context, inv lnd.Invoice) error {
	switch inv.State {
	case lnd.InvoiceAccepted:
		if r.hold.State != holdstore.StateCreated {
			return nil
		}
		expiry := inv.MinAcceptedExpiry()
		tr := r.to(holdstore.StateHeld, holdstore.ReasonNone)
		tr.IncomingExpiry = expiry
		tr.DeadlineHeight = r.m.cfg.DeadlineHeight(expiry)
		if err := r.apply(ctx, tr); err != nil {
			return err
		}
		r.m.metrics.held()
		r.announce(ctx)
		r.checkDeadline(ctx)

	case lnd.InvoiceCanceled:
		// lnd canceled it: unpaid past its expiry, or by hand. The
		// sender's funds are already back; canceling again is a no-op.
		return r.cancelNow(ctx, holdstore.ReasonHoldInvoiceCanceled)

	case lnd.InvoiceSettled:
		// Only we settle, and only from SETTLED: someone else did.
		r.log.Error("hold invoice settled outside asynclsp",
			"state", r.hold.State)
	}
	return nil
}

// announce sends held_htlc_available to the receiver LSP, once per run, from
// a goroutine that retries until it is stored there or the hold leaves HELD.
// The receiver LSP stores it idempotently, so a resend after a restart is
// harmless.
func (r *runner) announce(ctx context.Context) {
	if r.announced {
		return
	}
	r.announced = true
	h := r.hold
	msg := &onionmsg.HeldHTLCAvailable{
		HoldID:         onionmsg.HoldID(h.ID),
		PaymentHash:    h.PaymentHash,
		Amount:         h.AmountMsat,
		DeadlineHeight: h.DeadlineHeight,
		DeadlineTime:   h.DeadlineTime,
		SenderLSPKey:   r.m.net.Self(),
		ReceiverKey:    r.fixed.receiver,
		ReleaseSecret:  h.ReleaseSecret,
	}
	actx, cancel := context.WithCancel(ctx)
	r.stopAnnounce = cancel
	r.m.goOwned(func() {
		defer cancel()
		for attempt := 0; ; attempt++ {
			err := r.m.net.Send(actx, r.fixed.receiverLSP, msg)
			if err == nil {
				r.log.Info("receiver LSP told of the held payment")
				return
			}
			if actx.Err() != nil {
				return
			}
			r.log.Warn("telling the receiver LSP failed, retrying",
				"attempt", attempt+1, "err", err)
			if !sleep(actx, r.m.clock, backoff(attempt)) {
				return
			}
		}
	})
}

// tell sends a hold_outcome about the release whose digest is release to
// the receiver LSP, best effort: a release accepted or refused is for the
// receiver's information (the final outcome goes through tellFinal, which
// the hold waits for). It costs a goroutine: callers decide first whether
// the outcome is worth sending (Manager.refuse).
func (r *runner) tell(status onionmsg.HoldStatus, reason holdstore.Reason, release [32]byte) {
	msg := r.outcome(status, reason)
	msg.ReleaseDigest = release
	r.m.goOwned(func() {
		ctx, cancel := context.WithTimeout(r.m.ctx, r.m.cfg.RequestTimeout)
		defer cancel()
		if err := r.m.net.Send(ctx, r.fixed.receiverLSP, msg); err != nil {
			r.log.Warn("could not tell the receiver LSP the outcome",
				"status", status, "err", err)
		}
	})
}

func (r *runner) outcome(status onionmsg.HoldStatus, reason holdstore.Reason) *onionmsg.HoldOutcome {
	return &onionmsg.HoldOutcome{
		HoldID: onionmsg.HoldID(r.fixed.id), PaymentHash: r.fixed.hash,
		Status: status, Reason: string(reason),
	}
}
