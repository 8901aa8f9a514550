package senderlsp

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// value reads a gauge or a counter.
func value(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if g := out.GetGauge(); g != nil {
		return g.GetValue()
	}
	return out.GetCounter().GetValue()
}

// waitParked waits until no hold has a goroutine of its own.
func (h *harness) waitParked() {
	h.t.Helper()
	testkit.Eventually(h.t, 10*time.Second, "every runner parked", func() bool {
		return value(h.m.metrics.runners) == 0
	})
}

// waitAcknowledged waits until carol has acknowledged every announcement.
func (h *harness) waitAcknowledged() {
	h.t.Helper()
	testkit.Eventually(h.t, 10*time.Second, "announcements acknowledged", func() bool {
		p, err := h.store.Unannounced(context.Background(), "", 1)
		return err == nil && len(p.Holds) == 0
	})
}

func (h *harness) waitTracked() {
	h.t.Helper()
	select {
	case <-h.m.Tracked():
	case <-time.After(10 * time.Second):
		h.t.Fatal("holds not tracked again within 10s")
	}
}

func (h *harness) announcements(result string) float64 {
	return value(h.m.metrics.announces.WithLabelValues(result))
}

// A HELD hold costs no goroutine while it waits: every runner parks, and a
// release, a cancel and a deadline each wake the hold they concern.
func TestHeldHoldsPark(t *testing.T) {
	h := newHarness(t)
	release, msg := h.heldPayment()
	cancel, _ := h.heldPayment()
	late, _ := h.heldPayment()
	h.waitParked()

	h.relay(h.releaseFor(msg, h.davePriv))
	if done := h.waitResolved(release.ID); done.State != holdstore.StateSettled {
		t.Fatalf("released: %s", done.State)
	}
	if err := h.m.Cancel(context.Background(), cancel.ID, holdstore.ReasonCanceledBySender); err != nil {
		t.Fatal(err)
	}
	h.expectCanceled(cancel.ID, holdstore.ReasonCanceledBySender)
	h.lnd.Mine(late.DeadlineHeight - h.mustHeight())
	h.expectCanceled(late.ID, holdstore.ReasonDeadline)
	h.waitParked()
}

// lnd failing a parked hold's HTLC back (its invoice canceled by hand or by
// lnd's expiry) wakes the hold through the one HTLC event stream, and it
// is canceled with lnd's reason.
func TestLndCancelWakesParkedHold(t *testing.T) {
	h := newHarness(t)
	hold, _ := h.heldPayment()
	h.waitParked()
	h.lnd.CancelByLnd(hold.PaymentHash)
	h.expectCanceled(hold.ID, holdstore.ReasonHoldInvoiceCanceled)
}

// The HTLC event stream has no backlog: what lnd did while it was down is
// found by the reconcile that follows the resubscription.
func TestReconcileAfterHTLCEventsGap(t *testing.T) {
	h := newHarness(t)
	gone, _ := h.heldPayment()
	kept, _ := h.heldPayment()
	h.waitParked()
	h.lnd.HtlcEventsDown()
	h.lnd.CancelByLnd(gone.PaymentHash)
	h.lnd.HtlcEventsUp()
	h.expectCanceled(gone.ID, holdstore.ReasonHoldInvoiceCanceled)
	if got := h.get(kept.ID); got.State != holdstore.StateHeld {
		t.Fatalf("the other hold is %s", got.State)
	}
}

// A release never pays out a hold whose HTLCs lnd no longer holds, even
// when no event said so: the runner asks lnd first, and the hold is
// canceled with nothing paid.
func TestReleaseAsksLndFirst(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	h.waitParked()
	h.lnd.HtlcEventsDown() // the cancel's events are lost
	h.lnd.CancelByLnd(hold.PaymentHash)
	h.relay(h.releaseFor(msg, h.davePriv))
	h.expectCanceled(hold.ID, holdstore.ReasonHoldInvoiceCanceled)
	if n := len(h.lnd.Sent()); n != 0 {
		t.Fatalf("paid %d times a hold lnd had canceled", n)
	}
	h.waitOutcome(hold.ID, onionmsg.StatusCanceled, 1)
}

// An announcement carol did not store is sent again after a backoff on
// the clock; once stored, never again, and Reannounce sends it once more.
func TestAnnouncementRetriedUntilStored(t *testing.T) {
	h := newHarness(t)
	h.heldDown.Store(true)
	hold := h.pay(h.create(10_000_000))
	testkit.Eventually(t, 10*time.Second, "a failed announcement", func() bool {
		return h.announcements("failed") >= 1
	})
	h.heldDown.Store(false)
	h.waitTimer(time.Second)
	h.advance(time.Second)
	h.announced(hold.ID)
	h.waitAcknowledged()

	h.mu.Lock()
	delete(h.held, onionmsg.HoldID(hold.ID))
	h.mu.Unlock()
	n, err := h.m.Reannounce(context.Background(), h.carol)
	if err != nil || n != 1 {
		t.Fatalf("reannounce: %d, %v", n, err)
	}
	h.announced(hold.ID)
	h.waitAcknowledged()
	if got := h.announcements("stored"); got != 2 {
		t.Fatalf("%v announcements stored, want 2", got)
	}
}

// After a restart with many held payments, every hold is tracked again by
// a few paged reads of lnd's pending invoices: no call per hold, no burst,
// no announcement sent again; and a release among them still settles.
func TestRecoveryTracksManyWithoutBurst(t *testing.T) {
	const n = 2500
	h := newHarness(t)
	h.stop()
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: h.dbPath(), Clock: h.clock, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	helds := seedHeld(t, store, h.lnd, h.cfg, h.bob, h.carol, h.dave, n)
	ids := make([]holdstore.ID, n)
	for i, m := range helds {
		ids[i] = holdstore.ID(m.HoldID)
	}
	if err := store.MarkAnnounced(context.Background(), ids...); err != nil {
		t.Fatal(err)
	}
	store.Close()
	h.lnd.SetLatency(time.Millisecond)
	h.lnd.ResetMaxInFlight()
	lookups, lists := h.lnd.Calls("LookupInvoice"), h.lnd.Calls("ListPendingInvoices")

	h.startBob()
	h.waitTracked()
	if got := value(h.m.metrics.untrackedN); got != 0 {
		t.Fatalf("%v holds untracked once Tracked", got)
	}
	_, peak := h.lnd.InFlight()
	t.Logf("%d holds tracked: %d ListPendingInvoices, %d LookupInvoice, "+
		"peak %d calls in flight", n, h.lnd.Calls("ListPendingInvoices")-lists,
		h.lnd.Calls("LookupInvoice")-lookups, peak)
	if got := h.lnd.Calls("LookupInvoice") - lookups; got != 0 {
		t.Fatalf("%d invoice lookups to track %d holds lnd holds", got, n)
	}
	if got := h.lnd.Calls("ListPendingInvoices") - lists; got > (n+reconcilePage-1)/reconcilePage+1 {
		t.Fatalf("%d pages of pending invoices for %d holds", got, n)
	}
	if peak > 4 {
		t.Fatalf("%d lnd calls in flight at once during recovery", peak)
	}
	h.waitParked()
	if got := h.announcements("stored") + h.announcements("failed"); got != 0 {
		t.Fatalf("%v acknowledged holds announced again", got)
	}
	h.lnd.SetLatency(0)
	h.relay(h.releaseFor(helds[n/2], h.davePriv))
	if done := h.waitResolved(holdstore.ID(helds[n/2].HoldID)); done.State != holdstore.StateSettled {
		t.Fatalf("a release among %d recovered holds: %s", n, done.State)
	}
}

// Beyond MaxInvoiceStreams, an unpaid hold invoice is polled on the clock
// instead of followed on a stream of its own; it is HELD the poll after
// the sender pays, and takes a stream once one frees.
func TestUnpaidInvoicesBeyondTheStreamsArePolled(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxInvoiceStreams = 1 })
	streamed := h.create(10_000_000)
	testkit.Eventually(t, 10*time.Second, "one stream", func() bool {
		return h.lnd.Calls("SubscribeSingleInvoice") == 1
	})
	polled := h.create(10_000_000)
	h.waitTimer(time.Second) // its first poll found it unpaid
	if n := h.lnd.Calls("SubscribeSingleInvoice"); n != 1 {
		t.Fatalf("%d invoice streams, at most 1 wanted", n)
	}
	height := h.mustHeight()
	if err := h.lnd.PayHoldInvoice(polled.PaymentHash, height+h.cfg.HoldCltvDelta); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	h.waitState(polled.ID, holdstore.StateHeld)
	h.announced(polled.ID)

	// The stream frees once the first is paid: a third takes it.
	h.pay(streamed)
	third := h.create(10_000_000)
	testkit.Eventually(t, 10*time.Second, "a second stream", func() bool {
		return h.lnd.Calls("SubscribeSingleInvoice") == 2
	})
	h.pay(third)
}
