package senderlsp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// A genuine release that reaches the sender role while it is still resuming
// its holds after a restart (its lnd slow to answer) is handed back to the
// bus and taken once the hold's runner is up: never acknowledged and lost.
func TestReleaseDuringRecoveryIsRedelivered(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.pay(hold)
	rel := h.releaseFor(h.announced(hold.ID), h.davePriv)

	// Bob dies; dave's release waits in bob's stream.
	h.stop()
	h.relay(rel)

	// Bob starts again, consuming at once, while his lnd does not answer.
	gate := make(chan struct{})
	h.lnd.SetHook(func(method, phase string) {
		if method == "CurrentHeight" && phase == "before" {
			<-gate
		}
	})
	h.startBobNoWait()
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before bob's stop, which waits for his role
	testkit.Eventually(t, 20*time.Second, "the release handed back while bob resumes",
		func() bool { return h.bobConn.Consumed(bus.KindReleaseHeldHTLC, "retried") >= 1 })
	if got := h.get(hold.ID); got.State != holdstore.StateHeld {
		t.Fatalf("hold %s while bob resumes, want HELD", got.State)
	}
	if n := h.bobConn.Consumed(bus.KindReleaseHeldHTLC, "acked"); n != 0 {
		t.Fatalf("the release was acknowledged %v times before its hold's runner was up", n)
	}

	open()
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled {
		t.Fatalf("hold %s %s after the redelivered release, want SETTLED", done.State, done.Reason)
	}
}

// A release for a hold that is already finished changes nothing and is
// answered with the hold's outcome, so the receiver LSP's mailbox item ends
// final too (it may have missed the first one while it was down). Only a
// release that is the receiver's word on this hold gets an answer.
func TestReleaseForFinishedHoldIsAnsweredWithItsOutcome(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.pay(hold)
	held := h.announced(hold.ID)
	if err := h.m.Cancel(context.Background(), hold.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatal(err)
	}
	h.waitResolved(hold.ID)
	testkit.Eventually(t, 10*time.Second, "carol told of the cancel",
		func() bool { return len(h.outcomesOf(hold.ID)) == 1 })
	before, _ := h.store.LastSeq(context.Background())

	// A forged release (wrong secret) gets no answer.
	forged := *held
	forged.ReleaseSecret = onionmsg.NewReleaseSecret()
	h.relay(h.releaseFor(&forged, h.davePriv))
	testkit.Eventually(t, 10*time.Second, "the forged release handled",
		func() bool { return h.bobConn.Consumed(bus.KindReleaseHeldHTLC, "acked") >= 1 })
	if n := len(h.outcomesOf(hold.ID)); n != 1 {
		t.Fatalf("a forged release for a finished hold was answered (%d outcomes)", n)
	}

	// Dave's genuine release, late (expired, even): answered with canceled.
	rel := h.releaseFor(held, h.davePriv)
	h.advance(time.Hour)
	h.relay(rel)
	testkit.Eventually(t, 10*time.Second, "carol told again",
		func() bool { return len(h.outcomesOf(hold.ID)) == 2 })
	o := h.outcomesOf(hold.ID)[1]
	if o.Status != onionmsg.StatusCanceled || o.Reason != string(holdstore.ReasonCanceledBySender) ||
		o.PaymentHash != hold.PaymentHash {
		t.Fatalf("answer %+v, want canceled (%s)", o, holdstore.ReasonCanceledBySender)
	}
	if after, _ := h.store.LastSeq(context.Background()); after != before {
		t.Fatalf("a release for a finished hold wrote events %d..%d", before, after)
	}
	if got := h.get(hold.ID); got.State != holdstore.StateCanceled {
		t.Fatalf("hold %s", got.State)
	}
}
