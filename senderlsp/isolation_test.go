package senderlsp

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
)

// floodBound is how long a genuine release may take to settle while
// another member LSP floods: tens of milliseconds on a quiet machine; the
// bound leaves -race on a loaded 2-core CI machine its margin. Before
// per-peer workers the release waited behind every flooded message, one
// at a time (5,000 took 58 s under -race).
const floodBound = 5 * time.Second

// A member LSP that floods bob with forged releases delays only itself
// (issue 16, fault 3): carol's genuine release of another hold, stored
// after the whole flood, settles within floodBound, end to end on the
// fake lnd. The test logs release-to-settle with and without the flood.
func TestReleaseSettlesDuringForeignFlood(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	h := newHarness(t)
	settle := func(hold *holdstore.Hold) time.Duration {
		t.Helper()
		rel := h.releaseFor(h.announced(hold.ID), h.davePriv)
		start := time.Now()
		h.relay(rel)
		testkit.Eventually(t, time.Minute, "hold settled", func() bool {
			return h.get(hold.ID).State == holdstore.StateSettled
		})
		return time.Since(start)
	}
	quiet := h.create(10_000_000)
	h.pay(quiet)
	alone := settle(quiet)

	target, genuine := h.create(10_000_000), h.create(10_000_000)
	h.pay(target)
	h.pay(genuine)
	erin := h.peer(5)
	h.flood(erin, h.wrongSecret(h.announced(target.ID)), n)
	during := settle(genuine)
	t.Logf("release to settled: %v alone, %v with %d forged releases from "+
		"another LSP stored before it", alone, during, n)
	if during > floodBound {
		t.Fatalf("a genuine release took %v to settle behind another LSP's "+
			"flood of %d; bound %v", during, n, floodBound)
	}
	if st := h.get(target.ID).State; st != holdstore.StateHeld {
		t.Fatalf("the flooded hold is %s; forged releases must change nothing", st)
	}
}
