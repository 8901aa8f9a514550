package senderlsp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// wrongSecret is dave's release of msg, signed by him, with a secret that
// is not the hold's: bob refuses it (wrong_release_secret).
func (h *harness) wrongSecret(msg *onionmsg.HeldHTLCAvailable) *onionmsg.ReleaseHeldHTLC {
	h.t.Helper()
	bad := *msg
	bad.ReleaseSecret = onionmsg.NewReleaseSecret()
	return h.releaseFor(&bad, h.davePriv)
}

// relayFrom is the member LSP n relaying rel to bob.
func (h *harness) relayFrom(n *lspnet.Node, rel *onionmsg.ReleaseHeldHTLC) {
	h.t.Helper()
	if err := n.Send(context.Background(), h.bob, rel); err != nil {
		h.t.Fatal(err)
	}
}

// flood is the member LSP from relaying rel to bob n times, from a few
// senders at once.
func (h *harness) flood(from *lspnet.Node, rel *onionmsg.ReleaseHeldHTLC, n int) {
	h.t.Helper()
	const senders = 16
	var wg sync.WaitGroup
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < n; j += senders {
				if err := from.Send(context.Background(), h.bob, rel); err != nil {
					h.t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if h.t.Failed() {
		h.t.FailNow()
	}
}

// refusedReleases waits until bob has dropped n releases as bad in all.
func (h *harness) refusedReleases(n int) {
	h.t.Helper()
	testkit.Eventually(h.t, 2*time.Minute, "bad releases dropped", func() bool {
		return h.bobConn.Dropped(bus.KindReleaseHeldHTLC, bus.ReasonBadSignature) == float64(n)
	})
}

// outcomesWith is what carol was told of a hold with status st.
func (h *harness) outcomesWith(id holdstore.ID, st onionmsg.HoldStatus) []*onionmsg.HoldOutcome {
	var out []*onionmsg.HoldOutcome
	for _, o := range h.outcomesOf(id) {
		if o.Status == st {
			out = append(out, o)
		}
	}
	return out
}

// waitOutcome waits until carol has been told of a hold with status st
// n times.
func (h *harness) waitOutcome(id holdstore.ID, st onionmsg.HoldStatus, n int) []*onionmsg.HoldOutcome {
	h.t.Helper()
	testkit.Eventually(h.t, 10*time.Second, st.String()+" outcomes at carol", func() bool {
		return len(h.outcomesWith(id, st)) >= n
	})
	return h.outcomesWith(id, st)
}

func digest(t *testing.T, rel *onionmsg.ReleaseHeldHTLC) [32]byte {
	t.Helper()
	d, err := rel.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A refused release is reported only to the party that can act on it
// (issue 16, fault 1): the hold's own receiver LSP, when it relayed the
// release itself, and only while the hold waits for a release. A refusal
// relayed by another member LSP, or one that comes while the hold is
// being paid, reaches nobody: carol's item must not go back to pending
// while dave is being paid.
func TestRefusalOnlyToItsReceiverLSPWhileHeld(t *testing.T) {
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	h.pay(hold)
	msg := h.announced(hold.ID)
	erin := h.peer(5)

	// Erin, another member LSP, relays junk about carol's hold: dropped,
	// and nobody is told.
	h.relayFrom(erin, h.wrongSecret(msg))
	h.refusedReleases(1)

	// Carol relays one: she is told, with the release named.
	bad := h.wrongSecret(msg)
	h.relay(bad)
	h.refusedReleases(2)
	h.waitOutcome(hold.ID, onionmsg.StatusRejected, 1)

	// Dave's genuine release: bob pays (the payment hangs), and says
	// which release he took.
	rel := h.releaseFor(msg, h.davePriv)
	h.relay(rel)
	h.waitState(hold.ID, holdstore.StateForwarding)
	h.waitOutcome(hold.ID, onionmsg.StatusReleased, 1)

	// While dave is being paid, a refusal concerns nothing: a forgery
	// relayed by carol herself (another reason, so no window hides it)
	// reaches nobody.
	mallory, _ := testkit.Key(9)
	h.relay(h.releaseFor(msg, mallory))
	h.refusedReleases(3)

	h.lnd.ResolvePayment(hold.PaymentHash, testkit.Outcome{})
	if done := h.waitResolved(hold.ID); done.State != holdstore.StateSettled {
		t.Fatalf("hold %s, want SETTLED", done.State)
	}
	h.waitOutcome(hold.ID, onionmsg.StatusSettled, 1)
	// The final outcome was sent after every refusal above was handled.
	got := h.outcomesWith(hold.ID, onionmsg.StatusRejected)
	if len(got) != 1 {
		t.Fatalf("carol was told of %d refusals, want 1 (hers, while held): %+v",
			len(got), got)
	}
	if o := got[0]; o.Reason != "wrong_release_secret" || o.ReleaseDigest != digest(t, bad) {
		t.Fatalf("refusal %+v, want wrong_release_secret naming %x", o, digest(t, bad))
	}
	if o := h.outcomesWith(hold.ID, onionmsg.StatusReleased)[0]; o.ReleaseDigest != digest(t, rel) {
		t.Fatalf("released %+v, want it to name %x", o, digest(t, rel))
	}
}

// A flood of forged releases is not amplified (issue 16, fault 2): from
// the hold's receiver LSP it yields one refusal per reason within the
// window, from another member LSP none. No refusal costs a goroutine
// either: Manager.refuse decides before tell spawns one.
func TestForgedFloodIsNotAmplified(t *testing.T) {
	n := 1000 // from carol; a quarter as many from erin
	if testing.Short() {
		n = 200
	}
	h := newHarness(t)
	hold := h.create(10_000_000)
	h.pay(hold)
	msg := h.announced(hold.ID)
	erin := h.peer(5)

	bad := h.wrongSecret(msg)
	h.flood(erin, bad, n/4)
	h.flood(h.carolNode, bad, n)
	h.refusedReleases(n/4 + n)

	// Past the window, carol may be told again, once.
	h.advance(refusalWindow + time.Second)
	again := h.wrongSecret(msg)
	for range 3 {
		h.relay(again)
	}
	h.refusedReleases(n/4 + n + 3)

	// Dave's genuine release settles the hold; the final outcome follows
	// every refusal.
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitResolved(hold.ID)
	h.waitOutcome(hold.ID, onionmsg.StatusSettled, 1)
	got := h.outcomesWith(hold.ID, onionmsg.StatusRejected)
	if len(got) != 2 || got[0].ReleaseDigest != digest(t, bad) ||
		got[1].ReleaseDigest != digest(t, again) {

		t.Fatalf("%d forged releases (%d from carol) told carol of %d refusals, "+
			"want 2 (one per window)", n/4+n+3, n+3, len(got))
	}
	if h.get(hold.ID).State != holdstore.StateSettled {
		t.Fatal("the flood kept the hold from settling")
	}
}

// The refusals told are remembered for the window and no more, and never
// more than maxRefusalsRemembered of them: once full of recent ones,
// nothing more is told until they age out.
func TestRefusalsRemembered(t *testing.T) {
	var s refusals
	k := refusalKey{holdstore.ID{1}, "wrong_release_secret"}
	if !s.first(k, start) || s.first(k, start.Add(refusalWindow-time.Nanosecond)) {
		t.Fatal("told twice within the window, or not at all")
	}
	if !s.first(refusalKey{k.hold, "bad_signature"}, start) {
		t.Fatal("another reason of the same hold not told")
	}
	if !s.first(k, start.Add(refusalWindow)) {
		t.Fatal("not told again after the window")
	}
	s = refusals{}
	later := start.Add(refusalWindow)
	for i := range maxRefusalsRemembered {
		if !s.first(refusalKey{holdstore.ID{2, byte(i), byte(i >> 8)}, "x"}, later) {
			t.Fatalf("refusal %d of %d not told", i, maxRefusalsRemembered)
		}
	}
	extra := refusalKey{holdstore.ID{3}, "x"}
	if s.first(extra, later) || len(s.told) != maxRefusalsRemembered {
		t.Fatalf("told past the bound (%d remembered)", len(s.told))
	}
	if !s.first(extra, later.Add(refusalWindow)) || len(s.told) != 1 {
		t.Fatalf("old refusals not forgotten: %d remembered", len(s.told))
	}
}
