package senderlsp

import (
	"context"
	"errors"
	"strings"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
)

// startForwarding begins the first attempt of a RELEASED hold: one whose
// release waited for a forwarding slot, or was recorded before a restart.
// It begins one once a slot frees, if the budget still allows.
func (r *runner) startForwarding(ctx context.Context) error {
	if !r.takeSlot(ctx) {
		return nil // stopping, or canceled while waiting
	}
	limit, ok := r.m.cfg.CltvLimit(r.hold.IncomingExpiry, r.m.height.Load())
	if !ok {
		return r.cancelNow(ctx, holdstore.ReasonReleasedTooLate)
	}
	if err := r.apply(ctx, r.to(holdstore.StateForwarding, holdstore.ReasonNone)); err != nil {
		return err
	}
	r.send(ctx, limit)
	return nil
}

// send issues the outbound payment of the current attempt. If lnd already
// has a payment for the hash in flight or succeeded, it is followed instead:
// a payment is never made twice. An error leaves r.pay nil, and forward
// asks lnd what became of the attempt.
func (r *runner) send(ctx context.Context, limit uint32) {
	h, cfg := r.hold, &r.m.cfg
	req := lnd.SendPaymentRequest{
		Invoice:      h.ReceiverInvoice,
		FeeLimitMsat: cfg.RoutingFeeLimit(h.AmountMsat),
		CLTVLimit:    limit,
		MaxParts:     cfg.MaxParts,
		Timeout:      cfg.PaymentTimeout,
	}
	if h.ReceiverInvoiceAmountMsat == 0 {
		req.AmountMsat = h.AmountMsat
	}
	r.sentHeight = r.m.height.Load()
	sub, err := r.m.lnd.SendPayment(ctx, req)
	if errors.Is(err, lnd.ErrPaymentExists) {
		sub, err = r.m.lnd.TrackPayment(ctx, r.fixed.hash)
	}
	if err != nil {
		r.log.Warn("sending the outbound payment failed", "attempt",
			h.Attempts, "err", err)
		return
	}
	r.m.metrics.attempt()
	r.log.Info("outbound payment sent", "attempt", h.Attempts,
		"cltv_limit", limit)
	r.pay, r.inFlight = sub, true
}

// forward follows the outbound payment of a FORWARDING hold to its end: the
// preimage settles the hold; a failure is retried or cancels it. A payment
// that may still succeed is never given up on (invariant 2): after a
// restart it is tracked first.
func (r *runner) forward(ctx context.Context) error {
	if r.pay == nil {
		sub, err := r.m.lnd.TrackPayment(ctx, r.fixed.hash)
		switch {
		case errors.Is(err, lnd.ErrPaymentNotFound):
			// The attempt was recorded but never reached lnd.
			return r.resend(ctx, holdstore.ReasonNone)
		case err != nil:
			return err
		}
		r.pay, r.inFlight = sub, true
	}
	var last lnd.Payment
	for r.pay != nil {
		select {
		case p, ok := <-r.pay.Updates():
			if !ok {
				err := r.pay.Err()
				r.closePayment()
				return err
			}
			last = p
			switch p.Status {
			case lnd.PaymentSucceeded:
				r.closePayment()
				r.freeSlot()
				return r.succeeded(ctx, p)
			case lnd.PaymentFailed:
				r.closePayment()
				r.freeSlot()
				return r.failed(ctx, p)
			}
		case ev := <-r.events:
			r.handle(ctx, ev)
		case <-r.pokes:
			// Nothing to do while a payment may still succeed; the
			// pokes past the deadline ask whether it still may.
			if r.outboundExpired(ctx, last) {
				r.log.Error("lnd keeps the outbound payment in flight, "+
					"but no channel carries it and every HTLC of it "+
					"would have expired: canceling the incoming HTLC",
					"height", r.m.height.Load(),
					"incoming_expiry", r.hold.IncomingExpiry)
				r.closePayment()
				r.freeSlot()
				return r.cancelNow(ctx, holdstore.ReasonTimeout)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// outboundExpired reports whether an outbound payment that lnd still calls
// in flight (p, its last update) can no longer complete, so that canceling
// the incoming HTLC breaks no promise (invariant 2). lnd can leave one so
// for good: stopped just after handing an HTLC to its switch, it resumes
// the attempt at every start though no channel ever carried the HTLC (lnd
// issues 5152, 6249, 8975; the soak's lnd_ghost_payment). The hold would
// stay FORWARDING, holding a forwarding slot, until lnd itself cancels the
// hold invoice near its expiry.
//
// It can no longer complete once the chain is past the expiry of every
// HTLC it has or could have: every attempt's CLTV limit ends
// SafetyMarginBlocks before the incoming expiry (Config.CltvLimit), and an
// HTLC past its expiry is refused by every hop, the receiver's node
// included. What could still pay is an HTLC already on a commitment, whose
// holder may claim it with the preimage until its timeout is swept: so no
// open channel may carry one of this hash, and no closing channel may have
// an HTLC left (their hashes are not listed). Asked on the pokes past the
// hold's deadline, once a block; lnd's answers are only read.
func (r *runner) outboundExpired(ctx context.Context, p lnd.Payment) bool {
	height := r.m.height.Load()
	if end := r.hold.IncomingExpiry - r.m.cfg.SafetyMarginBlocks; height <= end {
		return false
	}
	for _, a := range p.HTLCs {
		if a.TimeLock >= height {
			return false
		}
	}
	chans, err := r.m.lnd.ListChannels(ctx)
	if err != nil {
		r.log.Warn("listing channels for an expired outbound payment", "err", err)
		return false
	}
	for _, c := range chans {
		for _, h := range c.HTLCs {
			if !h.Incoming && h.Hash == r.fixed.hash {
				return false
			}
		}
	}
	pending, err := r.m.lnd.PendingChannels(ctx)
	if err != nil {
		r.log.Warn("listing closing channels for an expired outbound payment", "err", err)
		return false
	}
	if len(pending.WaitingClose) > 0 {
		return false
	}
	for _, c := range pending.ForceClosing {
		if c.PendingHTLCs > 0 {
			return false
		}
	}
	return true
}

// succeeded records SETTLED with the preimage; settling the hold invoice is
// the next step, across restarts too (invariant 3).
func (r *runner) succeeded(ctx context.Context, p lnd.Payment) error {
	tr := r.to(holdstore.StateSettled, holdstore.ReasonNone)
	preimage := p.Preimage
	tr.Preimage, tr.OutboundFeeMsat = &preimage, p.FeeMsat
	if err := r.apply(ctx, tr); err != nil {
		return err
	}
	r.m.metrics.outcome("succeeded", holdstore.ReasonNone)
	return nil
}

// failed handles an attempt that failed for good: retry under a patient
// policy while it makes sense, otherwise cancel with the failure's reason.
func (r *runner) failed(ctx context.Context, p lnd.Payment) error {
	reason := classify(p)
	r.lastFailure = holdstore.MoreSpecific(r.lastFailure, reason)
	r.m.metrics.outcome("failed", reason)
	r.log.Warn("outbound attempt failed", "attempt", r.hold.Attempts,
		"lnd_reason", p.FailureReason, "reason", reason)
	if !r.retryable(reason, p) {
		return r.cancelNow(ctx, reason)
	}
	// A block or tick that came while the attempt was in flight poked a
	// runner that could not cancel then; it is not repeated, so look now
	// rather than wait a retry delay past the deadline.
	if due, ok := r.dueReason(); ok {
		return r.cancelNow(ctx, due)
	}
	if !r.idle(ctx, r.m.cfg.RetryDelay(r.hold.Attempts+1)) ||
		r.hold.State != holdstore.StateForwarding {
		return nil // stopping, or canceled while waiting
	}
	return r.resend(ctx, reason)
}

// resend begins a further attempt (FORWARDING -> FORWARDING, recording why
// the last one failed) if the block budget and the receiver's invoice
// allow; otherwise it cancels.
func (r *runner) resend(ctx context.Context, lastFailure holdstore.Reason) error {
	if !r.takeSlot(ctx) {
		return nil
	}
	if reason, due := r.dueReason(); due {
		return r.cancelNow(ctx, reason)
	}
	limit, ok := r.m.cfg.CltvLimit(r.hold.IncomingExpiry, r.m.height.Load())
	if !ok {
		return r.cancelNow(ctx, holdstore.ReasonDeadline)
	}
	if err := r.apply(ctx, r.to(holdstore.StateForwarding, lastFailure)); err != nil {
		return err
	}
	r.send(ctx, limit)
	return nil
}

// retryable reports whether another attempt could succeed after p failed
// for reason.
func (r *runner) retryable(reason holdstore.Reason, p lnd.Payment) bool {
	if r.hold.RetryPolicy != holdstore.RetryPatient {
		return false
	}
	switch reason {
	case holdstore.ReasonReceiverRejected:
		return r.chainMoved(p)
	case holdstore.ReasonReceiverInvoiceExpired:
		return false
	}
	return true
}

// chainMoved reports whether the receiver's node refused p at a height
// above the one the attempt was sent at. A final node refuses an HTLC whose
// CLTV expiry is too close to its own height with the very message it gives
// for an unknown payment, incorrect_or_unknown_payment_details, which
// carries that height (BOLT #4). A route built before blocks that reached
// the receiver first meets it; the soak saw it during a burst of blocks
// (issue 17). Such a refusal is worth another attempt; one at the height
// the attempt was sent at is the receiver's final word.
func (r *runner) chainMoved(p lnd.Payment) bool {
	if r.sentHeight == 0 {
		return false // not sent by this process: its height is unknown
	}
	for _, a := range p.HTLCs {
		if a.FailureCode == incorrectDetails && a.FailureHeight > r.sentHeight {
			return true
		}
	}
	return false
}

// incorrectDetails is lnd's name of BOLT #4's
// incorrect_or_unknown_payment_details.
const incorrectDetails = "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"

// liquidityFailures are the failure messages an HTLC gets when a channel on
// the route could not carry it.
var liquidityFailures = []string{
	"TEMPORARY_CHANNEL_FAILURE", "AMOUNT_BELOW_MINIMUM",
	"CHANNEL_DISABLED", "FEE_INSUFFICIENT",
}

// classify maps a failed payment to the most specific reason it shows. lnd
// says NO_ROUTE both when no path exists and when every path ran out of
// liquidity; the HTLCs' own failures tell the two apart.
func classify(p lnd.Payment) holdstore.Reason {
	switch p.FailureReason {
	case lnd.FailureIncorrectPaymentDetails:
		return holdstore.ReasonReceiverRejected
	case lnd.FailureInsufficientBalance:
		return holdstore.ReasonInsufficientLiquidity
	}
	for _, a := range p.HTLCs {
		for _, f := range liquidityFailures {
			if strings.Contains(a.FailureCode, f) {
				return holdstore.ReasonInsufficientLiquidity
			}
		}
	}
	switch p.FailureReason {
	case lnd.FailureNoRoute:
		return holdstore.ReasonNoRoute
	case lnd.FailureTimeout:
		return holdstore.ReasonTimeout
	}
	return holdstore.ReasonInternal
}

// takeSlot waits for a forwarding slot (Config.MaxForwarding) while it
// answers events and deadline pokes: the outbound payments in flight at
// once are bounded, so a burst of releases queues here in RELEASED instead
// of piling HTLCs on lnd beyond what its channels carry (483 per
// direction). false: the hold left its state, or ctx ended.
func (r *runner) takeSlot(ctx context.Context) bool {
	if r.slot {
		return true
	}
	state := r.hold.State
	for r.hold.State == state {
		select {
		case r.m.forwarding <- struct{}{}:
			r.slot = true
			return true
		case ev := <-r.events:
			r.handle(ctx, ev)
		case <-r.pokes:
			r.checkDeadline(ctx)
		case <-r.checks:
		case <-ctx.Done():
			return false
		}
	}
	return false
}

// trySlot takes a forwarding slot if one is free now.
func (r *runner) trySlot() bool {
	if r.slot {
		return true
	}
	select {
	case r.m.forwarding <- struct{}{}:
		r.slot = true
		return true
	default:
		return false
	}
}

// freeSlot gives the hold's forwarding slot back, if it has one.
func (r *runner) freeSlot() {
	if r.slot {
		<-r.m.forwarding
		r.slot = false
	}
}
