package scenarios

import (
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// TestScale is make scale at a size for make test: 300 payments held at
// once over two alice -> bob channels. Every payment must be HELD, still
// HELD after a kill -9 of bob's asynclspd (whose restart must track every
// hold again), settled once released, and the ledgers clean; once all are
// settled, bob's daemon must be back to about its idle goroutines. It
// asserts no speed and no cost per held payment, and logs the figures.
func TestScale(t *testing.T) {
	cfg := ScaleConfig{N: 300, Channels: 2, Direct: 64,
		Checkpoints: []int{100}, Progress: t.Logf}
	c := newCastOn(t, regtest.StartT(t, ScaleNetOptions(cfg)),
		ScaleCastOptions(cfg))
	timed(t)
	ctx := testCtx(t, 10*time.Minute)

	r, err := Scale(ctx, c, cfg)
	if r != nil {
		var b strings.Builder
		r.Print(&b)
		t.Log(b.String())
	}
	must(t, err)

	if got := r.Points[len(r.Points)-1].Held; got != cfg.N {
		t.Fatalf("held %d at the last checkpoint, want %d", got, cfg.N)
	}
	for _, p := range r.Points {
		if p.CreateRate <= 0 || p.HeldRate <= 0 {
			t.Fatalf("held %d: %.1f creates/s, %.1f held/s", p.Held,
				p.CreateRate, p.HeldRate)
		}
	}
	if r.Restart.Tracked <= 0 || r.Release.Settled.Count != cfg.N {
		t.Fatalf("restart %+v, release %+v", r.Restart, r.Release)
	}
	if r.Direct.Count != cfg.Direct || r.HeldDirect.Count != cfg.Direct {
		t.Fatalf("direct %v, with the %d held %v: want %d each", r.Direct,
			cfg.N, r.HeldDirect, cfg.Direct)
	}
	if n := r.Ledger.Count(Lost) + r.Ledger.Count(PaidTwice) +
		r.Ledger.Count(Stuck); n > 0 || !r.Ledger.OK() {
		t.Fatalf("the ledgers show %s", r.Ledger)
	}
	if f := r.Ledger.Fates(); f[FateSettled] != cfg.N {
		t.Fatalf("%d of %d payments settled", f[FateSettled], cfg.N)
	}

	// What is left once all are settled is bounded here; the goroutines
	// while holding, by BenchmarkHeldAtScale.
	held := r.Points[len(r.Points)-1]
	t.Logf("bob's goroutines: %.0f idle, %.0f with %d held (%.2f a held "+
		"payment), %.0f once all settled", r.Idle.Goroutines,
		held.Goroutines, held.Held,
		(held.Goroutines-r.Idle.Goroutines)/float64(held.Held),
		r.Settled.Goroutines)
	if left := r.Settled.Goroutines - r.Idle.Goroutines; left > maxGoroutinesLeft {
		t.Fatalf("%.0f goroutines more once all settled than idle, want at "+
			"most %d", left, maxGoroutinesLeft)
	}
}

// maxGoroutinesLeft bounds the goroutines bob's daemon has once every
// payment settled beyond those it had idle (connections, caches).
const maxGoroutinesLeft = 64
