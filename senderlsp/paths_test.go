package senderlsp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// heldPayment creates a payment, pays it and waits until carol knows.
func (h *harness) heldPayment(tune ...func(*PaymentRequest)) (*holdstore.Hold, *onionmsg.HeldHTLCAvailable) {
	h.t.Helper()
	hold := h.create(10_000_000, tune...)
	hold = h.pay(hold)
	return hold, h.announced(hold.ID)
}

// expectCanceled waits for the hold to be canceled at lnd and checks why.
func (h *harness) expectCanceled(id holdstore.ID, reason holdstore.Reason) *holdstore.Hold {
	h.t.Helper()
	hold := h.waitResolved(id)
	if hold.State != holdstore.StateCanceled || hold.Reason != reason {
		h.t.Fatalf("hold is %s/%s, want CANCELED/%s", hold.State, hold.Reason, reason)
	}
	if got := h.invoiceState(hold.PaymentHash); got != "CANCELED" {
		h.t.Fatalf("hold invoice %s, want CANCELED", got)
	}
	if n := h.finalEvents(id); n != 1 {
		h.t.Fatalf("%d final events", n)
	}
	testkit.Eventually(h.t, 10*time.Second, "outcome canceled at carol", func() bool {
		for _, o := range h.outcomesOf(id) {
			if o.Status == onionmsg.StatusCanceled && o.Reason == string(reason) {
				return true
			}
		}
		return false
	})
	return hold
}

// Invariant 5: a hold nobody releases is canceled at its deadline height,
// long before lnd's own 18-block cancel, without paying anyone.
func TestDeadlineCancelsBeforeLnd(t *testing.T) {
	h := newHarness(t)
	hold, _ := h.heldPayment()
	h.lnd.Mine(hold.DeadlineHeight - 1 - h.mustHeight())
	if got := h.get(hold.ID); got.State != holdstore.StateHeld {
		t.Fatalf("canceled a block early: %s", got.State)
	}
	h.lnd.Mine(1)
	done := h.expectCanceled(hold.ID, holdstore.ReasonDeadline)
	if height := h.mustHeight(); height+18 >= done.IncomingExpiry {
		t.Fatalf("canceled at %d, within lnd's 18 blocks of %d", height, done.IncomingExpiry)
	}
	if len(h.lnd.Sent()) != 0 {
		t.Fatal("a canceled hold paid the receiver")
	}
}

func (h *harness) mustHeight() uint32 {
	height, err := h.lnd.CurrentHeight(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return height
}

func TestMaxHoldTime(t *testing.T) {
	h := newHarness(t)
	hold, _ := h.heldPayment(func(r *PaymentRequest) { r.MaxHoldTime = time.Hour })
	h.advance(time.Hour + h.cfg.DeadlineInterval)
	h.expectCanceled(hold.ID, holdstore.ReasonMaxHoldTime)
}

func TestReceiverInvoiceExpiry(t *testing.T) {
	h := newHarness(t)
	h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		inv, _ := h.lnd.ReceiverInvoice(h.dave, req.Amount, 2*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	hold, _ := h.heldPayment()
	h.advance(2*time.Hour - h.cfg.InvoiceExpiryMargin + h.cfg.DeadlineInterval)
	h.expectCanceled(hold.ID, holdstore.ReasonReceiverInvoiceExpired)
}

// An unpaid hold invoice that lnd cancels (its expiry) ends the hold.
func TestHoldInvoiceCanceledByLnd(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.lnd.CancelByLnd(hold.PaymentHash)
	h.expectCanceled(hold.ID, holdstore.ReasonHoldInvoiceCanceled)
}

// Every failure class of the outbound payment, with a fast-fail policy:
// one attempt, then the hold is canceled with that class as its reason.
func TestFailureClasses(t *testing.T) {
	cases := []struct {
		outcome testkit.Outcome
		reason  holdstore.Reason
	}{
		{testkit.Outcome{Fail: lnd.FailureNoRoute}, holdstore.ReasonNoRoute},
		{testkit.Outcome{Fail: lnd.FailureNoRoute, FailureCode: "TEMPORARY_CHANNEL_FAILURE"},
			holdstore.ReasonInsufficientLiquidity},
		{testkit.Outcome{Fail: lnd.FailureInsufficientBalance}, holdstore.ReasonInsufficientLiquidity},
		{testkit.Outcome{Fail: lnd.FailureIncorrectPaymentDetails,
			FailureCode: "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"}, holdstore.ReasonReceiverRejected},
		{testkit.Outcome{Fail: lnd.FailureTimeout}, holdstore.ReasonTimeout},
		{testkit.Outcome{Fail: lnd.FailureError}, holdstore.ReasonInternal},
	}
	h := newHarness(t)
	for _, c := range cases {
		hold, msg := h.heldPayment(func(r *PaymentRequest) { r.RetryPolicy = holdstore.RetryFastFail })
		h.lnd.Script(hold.PaymentHash, c.outcome)
		h.relay(h.releaseFor(msg, h.davePriv))
		done := h.expectCanceled(hold.ID, c.reason)
		if done.Attempts != 1 {
			t.Fatalf("%s: %d attempts under fast-fail", c.reason, done.Attempts)
		}
	}
}

// A patient payment retries in tiers (1s, then 5s) and settles when a
// later attempt works.
func TestPatientRetrySettles(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash,
		testkit.Outcome{Fail: lnd.FailureNoRoute},
		testkit.Outcome{Fail: lnd.FailureNoRoute, FailureCode: "TEMPORARY_CHANNEL_FAILURE"})
	h.relay(h.releaseFor(msg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "first failure", func() bool {
		p, ok := h.lnd.Payment(hold.PaymentHash)
		return ok && p.Status == lnd.PaymentFailed
	})
	waitSent := func(n int) {
		testkit.Eventually(t, 10*time.Second, "attempt", func() bool { return len(h.lnd.Sent()) == n })
	}
	// The retry waits on the injected clock, not on the wall.
	h.waitTimer(time.Second)
	h.advance(999 * time.Millisecond)
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("retried before the first tier's 1s: %d attempts", n)
	}
	h.advance(time.Millisecond)
	waitSent(2)
	testkit.Eventually(t, 10*time.Second, "second failure", func() bool {
		return h.get(hold.ID).Attempts == 2
	})
	h.waitTimer(5 * time.Second)
	h.advance(5 * time.Second)
	waitSent(3)
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || done.Attempts != 3 {
		t.Fatalf("%s after %d attempts", done.State, done.Attempts)
	}
}

// A receiver's node refuses an HTLC whose expiry is too close to its own
// height with incorrect_or_unknown_payment_details, and that refusal carries
// its height. A patient payment refused at a height above the one it was
// sent at met blocks the route did not know of: it is tried again, and
// settles. Refused at the height it was sent at, the receiver meant it: the
// hold is canceled receiver_rejected after one attempt.
func TestReceiverRejectedAfterBlocksRetries(t *testing.T) {
	for _, c := range []struct {
		name     string
		ahead    uint32
		attempts int
		state    holdstore.State
	}{
		{"chain moved", 2, 2, holdstore.StateSettled},
		{"same height", 0, 1, holdstore.StateCanceled},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			hold, msg := h.heldPayment()
			h.lnd.Script(hold.PaymentHash, testkit.Outcome{
				Fail:          lnd.FailureIncorrectPaymentDetails,
				FailureCode:   "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS",
				FailureHeight: h.mustHeight() + c.ahead,
			})
			h.relay(h.releaseFor(msg, h.davePriv))
			if c.state == holdstore.StateSettled {
				testkit.Eventually(t, 10*time.Second, "first failure", func() bool {
					return h.get(hold.ID).Attempts == 1 && h.lnd.Sent() != nil
				})
				h.waitTimer(time.Second)
				h.advance(time.Second)
			}
			done := h.waitResolved(hold.ID)
			if done.State != c.state || done.Attempts != c.attempts {
				t.Fatalf("%s/%s after %d attempts, want %s after %d",
					done.State, done.Reason, done.Attempts, c.state, c.attempts)
			}
			if c.state == holdstore.StateCanceled && done.Reason != holdstore.ReasonReceiverRejected {
				t.Fatalf("canceled %s, want receiver_rejected", done.Reason)
			}
			if n := len(h.lnd.Sent()); n != c.attempts {
				t.Fatalf("%d payments sent, want %d", n, c.attempts)
			}
		})
	}
}

// When the block budget runs out while a patient payment waits to retry,
// the hold is canceled with the most specific reason it met (no route),
// not the generic deadline (invariant 6).
func TestRetryBudgetEndsWithSpecificReason(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Fail: lnd.FailureNoRoute})
	h.relay(h.releaseFor(msg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "failure", func() bool {
		p, ok := h.lnd.Payment(hold.PaymentHash)
		return ok && p.Status == lnd.PaymentFailed
	})
	h.lnd.Mine(hold.DeadlineHeight - h.mustHeight())
	h.expectCanceled(hold.ID, holdstore.ReasonNoRoute)
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d attempts after the budget ran out", n)
	}
}

// The block that ends the budget may come while an attempt is still in
// flight: that poke cannot cancel, and no other comes. When the attempt
// then fails, the hold is canceled at once with the failure's reason, not a
// retry delay later (the test clock never moves here).
func TestBudgetEndsDuringAttempt(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(msg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "attempt in flight", func() bool { return len(h.lnd.Sent()) == 1 })
	h.lnd.Mine(hold.DeadlineHeight - h.mustHeight())
	testkit.Eventually(t, 10*time.Second, "deadline block seen", func() bool {
		return h.m.height.Load() >= hold.DeadlineHeight
	})
	h.lnd.ResolvePayment(hold.PaymentHash, testkit.Outcome{Fail: lnd.FailureNoRoute})
	h.expectCanceled(hold.ID, holdstore.ReasonNoRoute)
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d attempts after the budget ran out", n)
	}
}

// Invariant 2: while the outbound payment may still succeed, neither the
// deadline nor an operator cancels the hold; when it succeeds, it settles.
func TestNoCancelWhilePaymentInFlight(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(msg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "attempt in flight", func() bool { return len(h.lnd.Sent()) == 1 })

	h.lnd.Mine(hold.DeadlineHeight + 10 - h.mustHeight())
	h.advance(30 * 24 * time.Hour) // every time deadline too
	err := h.m.Cancel(context.Background(), hold.ID, holdstore.ReasonCanceledByOperator)
	if !errors.Is(err, ErrNotCancelable) {
		t.Fatalf("operator cancel during flight: %v", err)
	}
	if got := h.get(hold.ID); got.State != holdstore.StateForwarding ||
		h.invoiceState(hold.PaymentHash) != "ACCEPTED" {
		t.Fatalf("hold %s, invoice %s while paying", got.State, h.invoiceState(hold.PaymentHash))
	}
	h.lnd.ResolvePayment(hold.PaymentHash, testkit.Outcome{})
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || h.invoiceState(hold.PaymentHash) != "SETTLED" {
		t.Fatalf("%s, invoice %s", done.State, h.invoiceState(hold.PaymentHash))
	}
}

// lnd can keep an outbound payment in flight for good with no HTLC on any
// channel (the soak's lnd_ghost_payment). Once the chain is past the expiry
// of every HTLC it could have, and no open channel carries one of its hash
// and no closing channel has an HTLC left, it can no longer pay: the
// incoming HTLC is canceled (timeout), well before lnd's own cancel near
// its expiry, and the forwarding slot is free again. Before that, or while
// such an HTLC may exist, the hold stays FORWARDING (invariant 2).
func TestExpiredGhostPaymentCancels(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(msg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "attempt in flight", func() bool { return len(h.lnd.Sent()) == 1 })
	hold = h.waitState(hold.ID, holdstore.StateForwarding)

	// Every poke past the end asks lnd: waiting for the question means
	// the block was looked at.
	asked := func(method string, mine uint32) {
		t.Helper()
		before := h.lnd.Calls(method)
		h.lnd.Mine(mine)
		testkit.Eventually(t, 10*time.Second, method+" asked", func() bool {
			return h.lnd.Calls(method) > before
		})
		if got := h.get(hold.ID); got.State != holdstore.StateForwarding {
			t.Fatalf("%s while an HTLC may pay (%s)", got.State, method)
		}
	}
	end := hold.IncomingExpiry - h.cfg.SafetyMarginBlocks
	// The attempt's HTLC expires at end: up to it, nothing is asked.
	h.lnd.Mine(end - h.mustHeight())
	testkit.Eventually(t, 10*time.Second, "height seen", func() bool { return h.m.height.Load() == end })

	chans, err := h.lnd.ListChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	withHTLC := append([]lnd.Channel(nil), chans...)
	withHTLC[0].HTLCs = append(withHTLC[0].HTLCs, lnd.ChannelHTLC{Hash: hold.PaymentHash})
	h.lnd.SetChannels(withHTLC)
	asked("ListChannels", 1)
	if n := h.lnd.Calls("PendingChannels"); n != 0 {
		t.Fatalf("closing channels asked %d times with an HTLC open", n)
	}

	h.lnd.SetChannels(chans)
	h.lnd.SetPendingChannels(lnd.PendingChannels{
		ForceClosing: []lnd.PendingChannel{{PendingHTLCs: 1}}})
	asked("PendingChannels", 1)

	h.lnd.SetPendingChannels(lnd.PendingChannels{})
	h.lnd.Mine(1)
	done := h.expectCanceled(hold.ID, holdstore.ReasonTimeout)
	if height := h.mustHeight(); height+18 >= done.IncomingExpiry {
		t.Fatalf("canceled at %d, within lnd's 18 blocks of %d", height, done.IncomingExpiry)
	}
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d payments sent", n)
	}
}

func TestCancelBySender(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	hold, _ := h.heldPayment()
	if err := h.m.Cancel(ctx, hold.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatal(err)
	}
	h.expectCanceled(hold.ID, holdstore.ReasonCanceledBySender)
	if err := h.m.Cancel(ctx, hold.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatalf("second cancel: %v", err)
	}
	if err := h.m.Cancel(ctx, holdstore.NewID(), holdstore.ReasonCanceledBySender); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown payment: %v", err)
	}
	if err := h.m.Cancel(ctx, hold.ID, holdstore.ReasonDeadline); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("cancel with a deadline reason: %v", err)
	}

	settled, msg := h.heldPayment()
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitResolved(settled.ID)
	if err := h.m.Cancel(ctx, settled.ID, holdstore.ReasonCanceledBySender); !errors.Is(err, ErrNotCancelable) {
		t.Fatalf("canceling a settled payment: %v", err)
	}
}

// With every forwarding slot taken, a release is committed RELEASED,
// acknowledged and told, and its payment is sent once a slot frees: lnd
// never carries more outbound payments than MaxForwarding.
func TestReleasesWaitForAForwardingSlot(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxForwarding = 1 })
	first, firstMsg := h.heldPayment()
	second, secondMsg := h.heldPayment()
	h.lnd.Script(first.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(firstMsg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "first attempt", func() bool { return len(h.lnd.Sent()) == 1 })

	h.relay(h.releaseFor(secondMsg, h.davePriv))
	h.waitState(second.ID, holdstore.StateReleased)
	h.waitOutcome(second.ID, onionmsg.StatusReleased, 1)
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d payments in flight with one slot", n)
	}
	h.lnd.ResolvePayment(first.PaymentHash, testkit.Outcome{})
	for _, id := range []holdstore.ID{first.ID, second.ID} {
		if done := h.waitResolved(id); done.State != holdstore.StateSettled {
			t.Fatalf("%s", done.State)
		}
	}
	if n := len(h.lnd.Sent()); n != 2 {
		t.Fatalf("%d payments for two holds", n)
	}
}

// A release waiting for a forwarding slot still meets its hold's deadline:
// it is canceled there, never sent, and nothing is paid.
func TestQueuedReleaseMeetsItsDeadline(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxForwarding = 1 })
	first, firstMsg := h.heldPayment()
	second, secondMsg := h.heldPayment()
	h.lnd.Script(first.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(firstMsg, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "first attempt", func() bool { return len(h.lnd.Sent()) == 1 })
	h.relay(h.releaseFor(secondMsg, h.davePriv))
	h.waitState(second.ID, holdstore.StateReleased)

	h.lnd.Mine(second.DeadlineHeight - h.mustHeight())
	h.expectCanceled(second.ID, holdstore.ReasonDeadline)
	if got := h.get(first.ID); got.State != holdstore.StateForwarding {
		t.Fatalf("the hold in flight is %s", got.State)
	}
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d payments sent", n)
	}
}
