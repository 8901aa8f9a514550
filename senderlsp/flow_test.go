package senderlsp

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
)

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	const amount = 50_000_000
	hold := h.create(amount)

	// The hold invoice: dave's hash, amount plus fee, the long CLTV.
	inv, ok := h.lnd.Invoice(hold.PaymentHash)
	if !ok || inv.ValueMsat != amount+h.cfg.Fee(amount) ||
		inv.CltvExpiry != uint64(h.cfg.HoldCltvDelta) || inv.PaymentRequest != hold.HoldInvoice {
		t.Fatalf("hold invoice %+v", inv)
	}

	held := h.pay(hold)
	height, _ := h.lnd.CurrentHeight(context.Background())
	wantExpiry := height + h.cfg.HoldCltvDelta
	if held.IncomingExpiry != wantExpiry ||
		held.DeadlineHeight != wantExpiry-h.cfg.SafetyMarginBlocks-h.cfg.MinOutboundCltv {
		t.Fatalf("held: expiry %d deadline %d", held.IncomingExpiry, held.DeadlineHeight)
	}
	msg := h.announced(hold.ID)
	if msg.PaymentHash != hold.PaymentHash || msg.Amount != amount ||
		msg.SenderLSPKey != h.bob || msg.ReceiverKey != h.dave ||
		msg.DeadlineHeight != held.DeadlineHeight || msg.ReleaseSecret != hold.ReleaseSecret {
		t.Fatalf("held_htlc_available %+v", msg)
	}

	h.relay(h.releaseFor(msg, h.davePriv))
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || done.Preimage == nil || done.Attempts != 1 {
		t.Fatalf("after release: %s, attempts %d", done.State, done.Attempts)
	}
	if got := h.invoiceState(hold.PaymentHash); got != "SETTLED" {
		t.Fatalf("hold invoice %s, want SETTLED", got)
	}
	// One outbound payment, within every limit (invariant 4).
	sent := h.lnd.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d outbound payments", len(sent))
	}
	p := sent[0]
	if p.Invoice != hold.ReceiverInvoice || p.AmountMsat != 0 || p.MaxParts != 16 ||
		p.CLTVLimit != wantExpiry-h.cfg.SafetyMarginBlocks-height ||
		p.FeeLimitMsat != h.cfg.RoutingFeeLimit(amount) {
		t.Fatalf("outbound payment %+v", p)
	}
	if n := h.finalEvents(hold.ID); n != 1 {
		t.Fatalf("%d final events", n)
	}
	evs, _ := h.store.History(context.Background(), hold.ID)
	var path []holdstore.State
	for _, ev := range evs {
		path = append(path, ev.To)
	}
	want := []holdstore.State{holdstore.StateCreated, holdstore.StateHeld,
		holdstore.StateReleased, holdstore.StateForwarding, holdstore.StateSettled}
	if len(path) != len(want) {
		t.Fatalf("path %v", path)
	}
	for i := range want {
		if path[i] != want[i] {
			t.Fatalf("path %v, want %v", path, want)
		}
	}
	// Carol hears the release taken and the settle: two sends that race
	// (the first is best effort, from its own goroutine), so in either
	// order; her mailbox takes settled as final whichever comes first.
	testkit.Eventually(t, 10*time.Second, "outcomes at carol", func() bool {
		o := h.outcomesOf(hold.ID)
		return len(o) == 2 && o[0].Status != o[1].Status &&
			(o[0].Status == onionmsg.StatusReleased || o[0].Status == onionmsg.StatusSettled) &&
			(o[1].Status == onionmsg.StatusReleased || o[1].Status == onionmsg.StatusSettled)
	})
}

// A release is single-use (invariant 7): replayed after the settle, it
// changes nothing and makes no second payment.
func TestReplayedReleaseChangesNothing(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.pay(hold)
	rel := h.releaseFor(h.announced(hold.ID), h.davePriv)
	h.relay(rel)
	h.waitResolved(hold.ID)
	before, _ := h.store.LastSeq(context.Background())

	h.relay(rel)
	// A later message proves bob has handled the replay.
	other := h.create(10_000_000)
	h.pay(other)
	h.relay(h.releaseFor(h.announced(other.ID), h.davePriv))
	h.waitResolved(other.ID)
	if n := len(h.lnd.Sent()); n != 2 {
		t.Fatalf("%d outbound payments for two holds", n)
	}
	evs, _ := h.store.History(context.Background(), hold.ID)
	for _, ev := range evs {
		if ev.Seq > before {
			t.Fatalf("the replay changed the hold: %+v", ev)
		}
	}
}

// Forged, mismatched, misdirected and stale releases change nothing
// (invariant 7); the hold stays HELD and a genuine release still works.
func TestBadReleasesChangeNothing(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.pay(hold)
	msg := h.announced(hold.ID)
	mallory, _ := testkit.Key(9)

	forged := h.releaseFor(msg, mallory)

	wrongSecret := *msg
	wrongSecret.ReleaseSecret[0] ^= 1
	badSecret := h.releaseFor(&wrongSecret, h.davePriv)

	otherLSP := *msg
	_, otherLSP.SenderLSPKey = testkit.Key(8)
	misdirected := h.releaseFor(&otherLSP, h.davePriv)

	expired := h.releaseFor(msg, h.davePriv)
	// Past its 10-minute life and the 2-minute clock skew allowed.
	h.advance(10*time.Minute + h.cfg.ReleaseClockSkew + time.Second)

	unknown := *msg
	unknown.HoldID[0] ^= 1
	noSuchHold := h.releaseFor(&unknown, h.davePriv)

	for _, rel := range []*onionmsg.ReleaseHeldHTLC{forged, badSecret, misdirected, expired, noSuchHold} {
		h.relay(rel)
	}
	testkit.Eventually(t, 10*time.Second, "five releases dropped", func() bool {
		kind := bus.KindReleaseHeldHTLC
		return h.bobConn.Dropped(kind, bus.ReasonBadSignature) == 3 &&
			h.bobConn.Dropped(kind, bus.ReasonMisdirected) == 2
	})
	if got := h.get(hold.ID); got.State != holdstore.StateHeld || len(h.lnd.Sent()) != 0 {
		t.Fatalf("bad releases moved the hold to %s and paid %d times",
			got.State, len(h.lnd.Sent()))
	}
	// Carol relayed them and the hold is HELD: she is told, once per
	// reason (the forged release, made before the clock moved, is expired
	// too: the same refusal as the expired one). Not of the misdirected
	// one or the unknown hold: those are not bob's.
	testkit.Eventually(t, 10*time.Second, "two rejections at carol", func() bool {
		return len(h.outcomesOf(hold.ID)) == 2
	})
	reasons := map[string]bool{}
	for _, o := range h.outcomesOf(hold.ID) {
		if o.Status != onionmsg.StatusRejected {
			t.Fatalf("outcome %v for a bad release", o.Status)
		}
		reasons[o.Reason] = true
	}
	if !reasons["wrong_release_secret"] || !reasons["release_expired"] {
		t.Fatalf("refusals told: %v", reasons)
	}

	// A genuine release still works.
	h.relay(h.releaseFor(msg, h.davePriv))
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || len(h.lnd.Sent()) != 1 {
		t.Fatalf("state %s after %d payments", done.State, len(h.lnd.Sent()))
	}
}

// A release that comes when too few blocks are left to pay dave safely
// cancels the hold (released_too_late) and pays nothing.
func TestReleaseTooLate(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DeadlineInterval = time.Hour })
	hold := h.create(10_000_000)
	held := h.pay(hold)
	msg := h.announced(hold.ID)
	// Past the deadline height, before the watcher (which runs on the
	// next block) cancels: exactly the race a late release can lose.
	h.lnd.FailCalls("SubscribeBlocks", nil)
	h.m.height.Store(held.DeadlineHeight + 1)

	h.relay(h.releaseFor(msg, h.davePriv))
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateCanceled || done.Reason != holdstore.ReasonReleasedTooLate {
		t.Fatalf("%s/%s, want CANCELED/released_too_late", done.State, done.Reason)
	}
	if len(h.lnd.Sent()) != 0 || h.invoiceState(hold.PaymentHash) != "CANCELED" {
		t.Fatalf("paid %d times; hold invoice %s", len(h.lnd.Sent()), h.invoiceState(hold.PaymentHash))
	}
}

// The receiver LSP refuses a hold (dave's mailbox is full): bob cancels it
// at once instead of holding alice's HTLC to the deadline. An outcome about
// another LSP's hold is not his and changes nothing.
func TestReceiverLSPRefusalCancels(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	other, _ := h.heldPayment()
	refuse := &onionmsg.HoldOutcome{HoldID: msg.HoldID, PaymentHash: msg.PaymentHash,
		Status: onionmsg.StatusRejected, Reason: "mailbox_full"}
	wrongHash := *refuse
	wrongHash.HoldID, wrongHash.PaymentHash = onionmsg.HoldID(other.ID), msg.PaymentHash
	if err := h.carolNode.Send(context.Background(), h.bob, &wrongHash); err != nil {
		t.Fatal(err)
	}
	if err := h.carolNode.Send(context.Background(), h.bob, refuse); err != nil {
		t.Fatal(err)
	}
	h.expectCanceled(hold.ID, holdstore.ReasonReceiverRejected)
	if got := h.get(other.ID); got.State != holdstore.StateHeld {
		t.Fatalf("an outcome about another hash moved the other hold to %s", got.State)
	}
}
