package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// TestRestartsInAnyOrder restarts the daemons in turn, carol, bob, carol,
// bob, then both with carol first while bob is still down, and completes
// an async payment after each restart: the harness's restarts work
// whatever was restarted before (a soak of random kills needs nothing
// more), and every payment settles exactly once.
func TestRestartsInAnyOrder(t *testing.T) {
	c := newCast(t, regtest.Options{}, Options{})
	timed(t)
	ctx := testCtx(t, 10*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)

	killCarol := func(ctx context.Context) error { return c.Carol.Kill() }
	killBob := func(ctx context.Context) error { return c.Bob.Kill() }
	steps := []struct {
		name  string
		steps []func(context.Context) error
	}{
		{"carol", []func(context.Context) error{killCarol, c.RestartCarol}},
		{"bob", []func(context.Context) error{killBob, c.RestartBob}},
		{"carol again", []func(context.Context) error{c.Carol.Stop, c.RestartCarol}},
		{"bob again", []func(context.Context) error{killBob, c.RestartBob}},
		{"both, carol first", []func(context.Context) error{
			killBob, killCarol, c.RestartCarol, c.RestartBob}},
	}
	var hs []*held
	for _, s := range steps {
		restarted := time.Now()
		for _, step := range s.steps {
			must(t, step(ctx))
		}
		t.Logf("restarted %s in %v", s.name,
			time.Since(restarted).Round(time.Millisecond))
		h := holdOne(t, c, 10_000_000, 0)
		h.release(t, c)
		hs = append(hs, h)
	}
	checkSettledOnce(t, c, before, hs...)
	checkLedgers(t, c, Run{Sent: Expect(c.Sent(), FateSettled),
		Before: before})
}
