package senderlsp

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/routing/route"
)

// Invariant 3: bob stops while the outbound payment is in flight; it
// succeeds while he is down. On restart he learns the preimage from lnd and
// settles: the sender pays, the receiver is paid, exactly once.
func TestRecoverySettlesPaymentThatSucceededWhileDown(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitState(hold.ID, holdstore.StateForwarding)
	testkit.Eventually(t, 10*time.Second, "payment sent", func() bool { return len(h.lnd.Sent()) == 1 })

	h.stop()
	h.lnd.ResolvePayment(hold.PaymentHash, testkit.Outcome{})
	h.startBob()

	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || h.invoiceState(hold.PaymentHash) != "SETTLED" {
		t.Fatalf("%s, invoice %s", done.State, h.invoiceState(hold.PaymentHash))
	}
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d payments to the receiver", n)
	}
}

// SETTLED is committed, but settling the invoice fails until bob restarts:
// the preimage is not lost (invariant 3).
func TestRecoverySettlesAfterSettleFailed(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.FailCalls("SettleInvoice", lnd.ErrUnavailable)
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitState(hold.ID, holdstore.StateSettled)
	testkit.Eventually(t, 10*time.Second, "a settle attempt", func() bool {
		return h.lnd.Calls("SettleInvoice") > 0
	})
	if got := h.get(hold.ID); got.Resolved || h.invoiceState(hold.PaymentHash) != "ACCEPTED" {
		t.Fatalf("resolved=%v invoice %s before lnd settled", got.Resolved, h.invoiceState(hold.PaymentHash))
	}
	h.stop()
	h.lnd.FailCalls("SettleInvoice", nil)
	h.startBob()
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || h.invoiceState(hold.PaymentHash) != "SETTLED" {
		t.Fatalf("%s, invoice %s", done.State, h.invoiceState(hold.PaymentHash))
	}
}

// CANCELED is committed, canceling the invoice fails until bob restarts:
// the sender still gets the funds back, and nothing is paid.
func TestRecoveryCancelsAfterCancelFailed(t *testing.T) {
	h := newHarness(t)
	hold, _ := h.heldPayment()
	h.lnd.FailCalls("CancelInvoice", lnd.ErrUnavailable)
	if err := h.m.Cancel(context.Background(), hold.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "a cancel attempt", func() bool {
		return h.lnd.Calls("CancelInvoice") > 0
	})
	h.stop()
	h.lnd.FailCalls("CancelInvoice", nil)
	h.startBob()
	h.expectCanceled(hold.ID, holdstore.ReasonCanceledBySender)
	if len(h.lnd.Sent()) != 0 {
		t.Fatal("a canceled hold paid the receiver")
	}
}

// FORWARDING is committed but the payment never reached lnd: on restart it
// is sent (once), not canceled and not sent twice.
func TestRecoverySendsAttemptThatNeverReachedLnd(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.lnd.FailCalls("SendPayment", lnd.ErrUnavailable)
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitState(hold.ID, holdstore.StateForwarding)
	testkit.Eventually(t, 10*time.Second, "a send attempt", func() bool {
		return h.lnd.Calls("SendPayment") > 0
	})
	h.stop()
	h.lnd.FailCalls("SendPayment", nil)
	h.startBob()
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || len(h.lnd.Sent()) != 1 {
		t.Fatalf("%s after %d payments", done.State, len(h.lnd.Sent()))
	}
}

// A HELD hold survives a restart. Carol stored its announcement before, so
// bob does not send it again; dave's release still settles it.
func TestRecoveryOfHeldHold(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.waitAcknowledged()
	h.restartBob()
	h.waitTracked()
	if n := h.announcements("stored") + h.announcements("failed"); n != 0 {
		t.Fatalf("%v announcements after the restart of an acknowledged hold", n)
	}
	h.relay(h.releaseFor(msg, h.davePriv))
	if done := h.waitResolved(hold.ID); done.State != holdstore.StateSettled {
		t.Fatalf("%s", done.State)
	}
}

// A CREATED hold whose hold invoice lnd never made (bob died between the
// two) is canceled on restart without touching lnd's invoices.
func TestRecoveryOfHoldWithoutInvoice(t *testing.T) {
	h := newHarness(t)
	var p [32]byte
	p[0] = 7
	orphan := &holdstore.Hold{
		ID: holdstore.NewID(), PaymentHash: p, Owner: "wallet",
		AmountMsat: 10_000, ReceiverKey: route.Vertex(h.dave),
		ReceiverLSP: route.Vertex(h.carol), ReceiverInvoice: "lnbcrtnever",
		ReceiverInvoiceExpiry: h.clock.Now().Add(time.Hour),
		CltvDelta:             h.cfg.HoldCltvDelta, RetryPolicy: holdstore.RetryPatient,
		DeadlineTime: h.clock.Now().Add(time.Hour),
	}
	if _, err := h.store.Create(context.Background(), orphan); err != nil {
		t.Fatal(err)
	}
	h.restartBob()
	done := h.waitResolved(orphan.ID)
	if done.State != holdstore.StateCanceled || done.Reason != holdstore.ReasonInternal {
		t.Fatalf("%s/%s", done.State, done.Reason)
	}
	testkit.Eventually(t, 10*time.Second, "carol told", func() bool {
		o := h.outcomesOf(orphan.ID)
		return len(o) == 1 && o[0].Status == onionmsg.StatusCanceled
	})
}

// The final outcome reaches the receiver LSP durably: while it cannot be
// told, the hold stays unresolved (lnd already settled it), is retried,
// and survives a restart; once it can be told, the hold is resolved.
func TestFinalOutcomeIsToldDurably(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.outcomesDown.Store(true)
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitState(hold.ID, holdstore.StateSettled)
	testkit.Eventually(t, 10*time.Second, "the invoice settled", func() bool {
		return h.invoiceState(hold.PaymentHash) == "SETTLED"
	})
	h.advance(5 * time.Second) // a retry or two
	if got := h.get(hold.ID); got.Resolved {
		t.Fatal("resolved before the receiver LSP was told")
	}
	h.restartBob()
	h.outcomesDown.Store(false)
	testkit.Eventually(t, 10*time.Second, "resolved once told", func() bool {
		h.advance(time.Second)
		return h.get(hold.ID).Resolved
	})
	testkit.Eventually(t, 10*time.Second, "carol told settled", func() bool {
		for _, o := range h.outcomesOf(hold.ID) {
			if o.Status == onionmsg.StatusSettled {
				return true
			}
		}
		return false
	})
}

// A receiver LSP gone for good does not keep a hold unresolved forever.
func TestFinalOutcomeGivenUpAfterAnHour(t *testing.T) {
	h := newHarness(t)
	hold, _ := h.heldPayment()
	h.outcomesDown.Store(true)
	if err := h.m.Cancel(context.Background(), hold.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the invoice canceled", func() bool {
		return h.invoiceState(hold.PaymentHash) == "CANCELED"
	})
	testkit.Eventually(t, 10*time.Second, "resolved after giving up", func() bool {
		h.advance(10 * time.Minute)
		return h.get(hold.ID).Resolved
	})
}
