package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// awaitPayment follows the hold invoice of a CREATED hold until the sender
// pays it (HELD), lnd cancels it, a cancel request or a deadline ends it.
// It is the only state with an lnd stream of its own, and a short one: the
// sender pays right after the create.
//
// At most MaxInvoiceStreams holds follow their invoice on a stream at once:
// each stream costs lnd a subscription it scans on every invoice event of
// the node. Beyond them a hold asks lnd (pollInvoice) until a stream frees.
func (r *runner) awaitPayment(ctx context.Context) error {
	select {
	case r.m.invoiceStreams <- struct{}{}:
		defer func() { <-r.m.invoiceStreams }()
		return r.followInvoice(ctx)
	default:
		return r.pollInvoice(ctx)
	}
}

// pollDelay is the wait before asking lnd again about an unpaid hold
// invoice: 1 s doubling to 30 s.
func pollDelay(attempt int) time.Duration {
	return min(time.Second<<min(attempt, 5), 30*time.Second)
}

// pollInvoice is awaitPayment without a stream: LookupInvoice after each
// pollDelay on the injected clock, until the hold leaves CREATED or a
// stream frees. A sender pays right after the create, so a hold waits a
// second or two longer to be HELD; nothing is at stake meanwhile.
func (r *runner) pollInvoice(ctx context.Context) error {
	for attempt := 0; r.hold.State == holdstore.StateCreated; attempt++ {
		inv, err := r.m.lnd.LookupInvoice(ctx, r.fixed.hash)
		if errors.Is(err, lnd.ErrInvoiceNotFound) {
			r.log.Warn("hold invoice unknown to lnd, canceling the hold")
			return r.cancelNow(ctx, holdstore.ReasonInternal)
		}
		if err != nil {
			return err
		}
		if r.hold.HoldInvoice == "" {
			if err := r.recordHoldInvoice(ctx); err != nil {
				return err
			}
		}
		if err := r.onInvoice(ctx, inv); err != nil {
			return err
		}
		if r.hold.State != holdstore.StateCreated {
			return nil
		}
		r.checkDeadline(ctx)
		wait := r.m.clock.TickAfter(pollDelay(attempt))
		for waiting := true; waiting && r.hold.State == holdstore.StateCreated; {
			select {
			case <-wait:
				waiting = false
			case r.m.invoiceStreams <- struct{}{}:
				defer func() { <-r.m.invoiceStreams }()
				return r.followInvoice(ctx)
			case ev := <-r.events:
				r.handle(ctx, ev)
			case <-r.pokes:
				r.checkDeadline(ctx)
			case <-r.checks:
			case <-ctx.Done():
				return nil
			}
		}
	}
	return nil
}

// followInvoice is awaitPayment on a stream of the hold invoice.
func (r *runner) followInvoice(ctx context.Context) error {
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
	if r.hold.HoldInvoice == "" {
		if err := r.recordHoldInvoice(ctx); err != nil {
			return err
		}
	}
	r.checkDeadline(ctx)

	for r.hold.State == holdstore.StateCreated {
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
		case <-r.checks:
			// The stream tells this runner everything.
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// awaitRelease waits in HELD for a release, a refusal, a cancel, a
// deadline or lnd's cancel of the hold invoice, and parks (returns true)
// as soon as there is nothing to do: a held payment costs no goroutine
// while it waits. The Manager wakes it with the next event.
func (r *runner) awaitRelease(ctx context.Context) (parked bool, err error) {
	for r.hold.State == holdstore.StateHeld {
		if r.needCheck {
			if err := r.checkInvoice(ctx); err != nil {
				return false, err
			}
			continue
		}
		if r.waitHeld(ctx, false) {
			continue
		}
		if ctx.Err() != nil {
			return false, nil
		}
		if r.m.park(r) {
			return true, nil
		}
		// A caller is on its way (acquire): wait for it.
		r.waitHeld(ctx, true)
	}
	return false, nil
}

// waitHeld serves one event of a HELD hold: a request, a deadline poke (the
// deadline is looked at only then: a parked hold's deadline is the store's
// to find) or a recheck. Without block it returns false at once if there
// is none.
func (r *runner) waitHeld(ctx context.Context, block bool) bool {
	if block {
		select {
		case ev := <-r.events:
			r.handle(ctx, ev)
		case <-r.pokes:
			r.checkDeadline(ctx)
		case <-r.checks:
			r.needCheck = true
		case <-ctx.Done():
			return false
		}
		return true
	}
	select {
	case ev := <-r.events:
		r.handle(ctx, ev)
	case <-r.pokes:
		r.checkDeadline(ctx)
	case <-r.checks:
		r.needCheck = true
	case <-ctx.Done():
		return false
	default:
		return false
	}
	return true
}

// checkInvoice asks lnd what became of the hold invoice of a HELD hold,
// after lnd failed one of its HTLCs back or a reconcile did not find it
// accepted: canceled (by hand, or by lnd's expiry) or no longer held, the
// hold is canceled; still accepted, its HTLCs are recorded again.
func (r *runner) checkInvoice(ctx context.Context) error {
	select {
	case r.m.lndSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	inv, err := r.m.lnd.LookupInvoice(ctx, r.fixed.hash)
	<-r.m.lndSlots
	if errors.Is(err, lnd.ErrInvoiceNotFound) {
		r.log.Error("hold invoice of a held payment unknown to lnd")
		r.needCheck = false
		return r.cancelNow(ctx, holdstore.ReasonInternal)
	}
	if err != nil {
		return err
	}
	r.needCheck = false
	return r.onHeldInvoice(ctx, inv)
}

// confirmHeld asks lnd, before a payout, whether it still holds the HTLCs of
// this HELD hold, and cancels the hold if not.
func (r *runner) confirmHeld(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, r.m.cfg.RequestTimeout)
	defer cancel()
	inv, err := r.m.lnd.LookupInvoice(lctx, r.fixed.hash)
	if errors.Is(err, lnd.ErrInvoiceNotFound) {
		r.log.Error("hold invoice of a released payment unknown to lnd")
		return r.cancelNow(ctx, holdstore.ReasonInternal)
	}
	if err != nil {
		return fmt.Errorf("asking lnd whether it still holds the payment: %w", err)
	}
	r.needCheck = false
	return r.onHeldInvoice(ctx, inv)
}

// onHeldInvoice acts on what lnd says of a HELD hold's invoice.
func (r *runner) onHeldInvoice(ctx context.Context, inv lnd.Invoice) error {
	switch inv.State {
	case lnd.InvoiceAccepted:
		if r.m.watchCircuits(r.fixed.id, inv) {
			r.needCheck = true // failed while being recorded
		}
	case lnd.InvoiceSettled:
		// Only we settle, and only from SETTLED: someone else did.
		r.log.Error("hold invoice settled outside asynclsp", "state", r.hold.State)
		r.m.watchCircuits(r.fixed.id, inv)
	default:
		// Canceled by lnd, or open again: no HTLC is held any more,
		// and the sender's funds are back. Canceling again is a no-op.
		r.log.Warn("lnd no longer holds the payment", "invoice", inv.State)
		return r.cancelNow(ctx, holdstore.ReasonHoldInvoiceCanceled)
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
		// Recorded first: lnd's HTLC events name these HTLCs if it
		// fails them back from now on.
		if r.m.watchCircuits(r.fixed.id, inv) {
			r.needCheck = true
		}
		expiry := inv.MinAcceptedExpiry()
		tr := r.to(holdstore.StateHeld, holdstore.ReasonNone)
		tr.IncomingExpiry = expiry
		tr.DeadlineHeight = r.m.cfg.DeadlineHeight(expiry)
		if err := r.apply(ctx, tr); err != nil {
			return err
		}
		r.m.metrics.held()
		r.m.kickAnnounce()
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

// tell sends a hold_outcome about the release whose digest is release to
// the receiver LSP, best effort: a release accepted or refused is for the
// receiver's information (the final outcome goes through tellFinal, which
// the hold waits for). It costs a goroutine: callers decide first whether
// the outcome is worth sending (Manager.refuse).
func (r *runner) tell(status onionmsg.HoldStatus, reason holdstore.Reason, release [32]byte) {
	r.m.tell(r.fixed, r.log, status, reason, release)
}

// tell is runner.tell for a hold that may be parked.
func (m *Manager) tell(f fixedHold, log *slog.Logger, status onionmsg.HoldStatus,
	reason holdstore.Reason, release [32]byte) {

	msg := f.outcome(status, reason)
	msg.ReleaseDigest = release
	m.goOwned(func() {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.RequestTimeout)
		defer cancel()
		if err := m.net.Send(ctx, f.receiverLSP, msg); err != nil {
			log.Warn("could not tell the receiver LSP the outcome",
				"status", status, "err", err)
		}
	})
}

func (r *runner) outcome(status onionmsg.HoldStatus, reason holdstore.Reason) *onionmsg.HoldOutcome {
	return r.fixed.outcome(status, reason)
}

func (f fixedHold) outcome(status onionmsg.HoldStatus, reason holdstore.Reason) *onionmsg.HoldOutcome {
	return &onionmsg.HoldOutcome{
		HoldID: onionmsg.HoldID(f.id), PaymentHash: f.hash,
		Status: status, Reason: string(reason),
	}
}
