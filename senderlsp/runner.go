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
	"github.com/lightningnetwork/lnd/lntypes"
)

// errStaleRelease: a release for a hold that is not HELD (already released,
// settled or canceled). It changes nothing.
var errStaleRelease = errors.New("hold is not waiting for a release")

// errRunnerStopped: the runner stopped before it took the request: the hold
// was resolved, or the role is stopping. The store says which.
var errRunnerStopped = errors.New("the hold's runner has stopped")

// runner owns one hold from creation or recovery until lnd has done what its
// final state asks. Only the runner's goroutine touches hold; others talk to
// it through events.
type runner struct {
	m   *Manager
	log *slog.Logger

	// fixed never changes, so the release handler may read it from its
	// own goroutine.
	fixed fixedHold

	hold *holdstore.Hold
	// unlogged are committed transitions whose log lines wait for
	// logTransitions (write).
	unlogged []logged

	// events holds one request, so that its caller goes on (requestWhile)
	// without waiting for the runner to be scheduled; one the runner
	// never took is answered errRunnerStopped once it has stopped.
	events chan event
	pokes  chan struct{}
	// checks asks the runner to ask lnd about the hold invoice (recheck).
	checks chan struct{}
	// stopped is closed once the runner's goroutine has returned and the
	// Manager has detached it.
	stopped chan struct{}

	// pay follows the outbound payment while one may be in flight.
	pay      *lnd.Subscription[lnd.Payment]
	inFlight bool
	// slot: the hold holds a forwarding slot (takeSlot).
	slot bool

	// needCheck: lnd may have canceled the hold invoice of this HELD
	// hold (an HTLC event, or a reconcile that did not find it
	// accepted); ask it (checkInvoice).
	needCheck bool

	// lastFailure is why the last outbound attempt failed. The store
	// records it with the next attempt, but a cancel that comes first must
	// still carry it rather than a more generic reason.
	lastFailure holdstore.Reason

	// sentHeight is the block height when this process last sent the
	// outbound payment; 0 if it has not.
	sentHeight uint32

	heldAt, releasedAt time.Time

	// tellingSince is when telling the receiver LSP the final outcome
	// first failed.
	tellingSince time.Time
}

// fixedHold is what a release is checked against.
type fixedHold struct {
	id          holdstore.ID
	hash        lntypes.Hash
	secret      [32]byte
	receiver    onionmsg.NodeKey
	receiverLSP onionmsg.NodeKey
}

type event interface{ isEvent() }

// releaseEvent: a release arrived. Its signature is being checked by the
// handler while the runner writes; nothing it causes is committed unless
// the check passes.
type releaseEvent struct {
	rel      *onionmsg.ReleaseHeldHTLC
	verified *verdict

	// found is set, before done is answered, to the state the runner
	// found the hold in.
	found *holdstore.State
	done  chan error
}

type cancelEvent struct {
	reason holdstore.Reason
	done   chan error
}

// refusalEvent: the receiver LSP refused the hold.
type refusalEvent struct {
	done chan error
}

func (releaseEvent) isEvent() {}
func (cancelEvent) isEvent()  {}
func (refusalEvent) isEvent() {}

func newRunner(m *Manager, fixed fixedHold, h *holdstore.Hold) *runner {
	return &runner{
		m:       m,
		log:     m.log.With("hold", h.ID.String()),
		fixed:   fixed,
		hold:    h,
		events:  make(chan event, 1),
		pokes:   make(chan struct{}, 1),
		checks:  make(chan struct{}, 1),
		stopped: make(chan struct{}),
		heldAt:  heldTime(h),
	}
}

func heldTime(h *holdstore.Hold) time.Time {
	if h.State == holdstore.StateCreated {
		return time.Time{}
	}
	return h.UpdatedAt
}

// requestWhile hands ev to the runner, runs work (whether the runner took
// ev or not), and then waits for the runner's answer. Every event the
// runner takes is answered before it stops; one still queued when it
// stops was never taken.
func (r *runner) requestWhile(ctx context.Context, ev event, done chan error, work func()) error {
	var err error
	select {
	case r.events <- ev:
	case <-r.stopped:
		err = errRunnerStopped
	case <-ctx.Done():
		err = ctx.Err()
	}
	work()
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-r.stopped:
		// Answered before it stopped, or never taken.
		select {
		case err := <-done:
			return err
		default:
			return errRunnerStopped
		}
	}
}

// poke asks the runner to look at its deadlines.
func (r *runner) poke() {
	select {
	case r.pokes <- struct{}{}:
	default:
	}
}

// recheck asks the runner to ask lnd what became of the hold invoice.
func (r *runner) recheck() {
	select {
	case r.checks <- struct{}{}:
	default:
	}
}

// run drives the hold through its states until it is resolved, it parks
// (HELD, nothing to do) or ctx ends. An lnd or store failure is retried
// with backoff; every step is safe to repeat.
func (r *runner) run(ctx context.Context) {
	defer r.freeSlot()
	defer r.closePayment()
	for attempt := 0; ctx.Err() == nil; {
		if r.hold.Resolved {
			r.finished()
			return
		}
		var err error
		switch r.hold.State {
		case holdstore.StateCreated:
			err = r.awaitPayment(ctx)
		case holdstore.StateHeld:
			var parked bool
			if parked, err = r.awaitRelease(ctx); parked {
				return
			}
		case holdstore.StateReleased:
			err = r.startForwarding(ctx)
		case holdstore.StateForwarding:
			err = r.forward(ctx)
		case holdstore.StateSettled:
			err = r.settleInvoice(ctx)
		case holdstore.StateCanceled:
			err = r.cancelInvoice(ctx)
		}
		if err == nil || ctx.Err() != nil {
			attempt = 0
			continue
		}
		r.log.Warn("hold step failed, retrying", "state", r.hold.State,
			"attempt", attempt+1, "err", err)
		if !r.idle(ctx, backoff(attempt)) {
			return
		}
		attempt++
	}
}

// idle waits d while answering events and deadline pokes; false if ctx
// ended.
func (r *runner) idle(ctx context.Context, d time.Duration) bool {
	state := r.hold.State
	timer := r.m.clock.TickAfter(d)
	for r.hold.State == state {
		select {
		case <-timer:
			return true
		case ev := <-r.events:
			r.handle(ctx, ev)
		case <-r.pokes:
			r.checkDeadline(ctx)
		case <-r.checks:
			r.needCheck = true
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// handle answers an event in whatever state the hold is.
func (r *runner) handle(ctx context.Context, ev event) {
	switch ev := ev.(type) {
	case releaseEvent:
		*ev.found = r.hold.State
		send, queued, limit, err := r.release(ctx, ev.verified)
		ev.done <- err
		if send {
			r.send(ctx, limit)
		}
		r.logTransitions()
		if send || queued {
			// Names the release taken. It encodes: it was decoded.
			d, _ := ev.rel.Digest()
			r.tell(onionmsg.StatusReleased, holdstore.ReasonNone, d)
		}
	case cancelEvent:
		ev.done <- r.cancel(ctx, ev.reason)
	case refusalEvent:
		// Only a hold not yet released: once released, the receiver has
		// taken it.
		var err error
		if st := r.hold.State; st == holdstore.StateCreated || st == holdstore.StateHeld {
			err = r.cancelNow(ctx, holdstore.ReasonReceiverRejected)
		}
		ev.done <- err
	}
}

// apply commits transitions, a path of this hold, in one transaction and
// mirrors them on the in-memory hold.
func (r *runner) apply(ctx context.Context, trs ...holdstore.Transition) error {
	return r.applyIf(ctx, nil, trs...)
}

// applyIf is apply, for transitions allowed only if v passes: they are
// written while v's check runs, and committed only once it has passed
// (rolled back otherwise), so the check and the writing overlap.
func (r *runner) applyIf(ctx context.Context, v *verdict, trs ...holdstore.Transition) error {
	if err := r.write(ctx, v, trs...); err != nil {
		return err
	}
	r.logTransitions()
	return nil
}

// write is applyIf without the transitions' log lines, which wait in
// unlogged for logTransitions: the release logs them once the outbound
// payment is on its way, as formatting them costs what the rest of the
// runner's part of the release does.
func (r *runner) write(ctx context.Context, v *verdict, trs ...holdstore.Transition) error {
	var evs []holdstore.Event
	err := r.m.store.Update(ctx, func(tx *holdstore.Tx) error {
		var err error
		if evs, err = tx.ApplyPath(trs...); err != nil {
			return err
		}
		if v != nil {
			return v.wait()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, tr := range trs {
		r.mirror(tr, evs[i])
	}
	return nil
}

// mirror applies a committed transition to the in-memory hold.
func (r *runner) mirror(tr holdstore.Transition, ev holdstore.Event) {
	h := r.hold
	h.State, h.Reason, h.UpdatedAt = tr.To, ev.Reason, ev.At
	switch tr.To {
	case holdstore.StateHeld:
		h.IncomingExpiry, h.DeadlineHeight = tr.IncomingExpiry, tr.DeadlineHeight
		r.heldAt = ev.At
	case holdstore.StateForwarding:
		h.Attempts++
	case holdstore.StateSettled:
		h.Preimage, h.OutboundFeeMsat = tr.Preimage, tr.OutboundFeeMsat
	}
	h.Resolved = tr.Resolved
	r.unlogged = append(r.unlogged, logged{tr, ev})
	if tr.To == holdstore.StateCanceled {
		r.m.metrics.canceled(ev.Reason)
	}
}

// logged is a committed transition, for its log line.
type logged struct {
	tr holdstore.Transition
	ev holdstore.Event
}

// logTransitions logs the committed transitions not yet logged.
func (r *runner) logTransitions() {
	for _, l := range r.unlogged {
		r.log.Info("hold transition", "from", l.tr.From, "to", l.tr.To,
			"reason", l.ev.Reason, "seq", l.ev.Seq)
	}
	r.unlogged = r.unlogged[:0]
}

// to builds the transition from the current state to st.
func (r *runner) to(st holdstore.State, reason holdstore.Reason) holdstore.Transition {
	return holdstore.Transition{ID: r.fixed.id, From: r.hold.State, To: st, Reason: reason}
}

// cancelNow commits CANCELED with the most specific reason known; the next
// loop round cancels the invoice.
func (r *runner) cancelNow(ctx context.Context, reason holdstore.Reason) error {
	reason = holdstore.MoreSpecific(reason, r.lastFailure)
	return r.apply(ctx, r.to(holdstore.StateCanceled, reason))
}

// cancel answers a cancel request: allowed unless an outbound payment may
// still succeed (invariant 2) or the hold is settled.
func (r *runner) cancel(ctx context.Context, reason holdstore.Reason) error {
	switch r.hold.State {
	case holdstore.StateCanceled:
		return nil
	case holdstore.StateSettled:
		return fmt.Errorf("%w: hold is settled", ErrNotCancelable)
	case holdstore.StateForwarding:
		if r.inFlight {
			return fmt.Errorf("%w: its outbound payment is in flight",
				ErrNotCancelable)
		}
	}
	return r.cancelNow(ctx, reason)
}

// dueReason says whether a deadline of the hold has come, and which.
func (r *runner) dueReason() (holdstore.Reason, bool) {
	h, cfg := r.hold, &r.m.cfg
	now := r.m.clock.Now()
	switch {
	case h.DeadlineHeight > 0 && r.m.height.Load() >= h.DeadlineHeight:
		return holdstore.ReasonDeadline, true
	case !now.Before(h.ReceiverInvoiceExpiry.Add(-cfg.InvoiceExpiryMargin)):
		return holdstore.ReasonReceiverInvoiceExpired, true
	case !now.Before(h.DeadlineTime):
		return holdstore.ReasonMaxHoldTime, true
	}
	return holdstore.ReasonNone, false
}

// checkDeadline cancels a hold whose deadline has come, unless its outbound
// payment may still succeed: that payment's CLTV limit already ends before
// the incoming HTLC expires, so it resolves in time on its own.
func (r *runner) checkDeadline(ctx context.Context) {
	reason, due := r.dueReason()
	if !due || r.hold.State.Final() || r.inFlight {
		return
	}
	if err := r.cancelNow(ctx, reason); err != nil {
		r.log.Error("deadline cancel failed", "err", err)
	}
}

func (r *runner) closePayment() {
	if r.pay != nil {
		r.pay.Close()
		r.pay = nil
	}
	r.inFlight = false
}
