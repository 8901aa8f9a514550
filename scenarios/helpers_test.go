package scenarios

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// castTimeout bounds assembling a cast on a running network.
const castTimeout = 3 * time.Minute

// newCast starts a network with netOpts and assembles the cast on it; both
// are stopped when the test ends, and their logs kept if it failed.
func newCast(t *testing.T, netOpts regtest.Options, opts Options) *Cast {
	t.Helper()
	return newCastOn(t, regtest.StartT(t, netOpts), opts)
}

// newCastOn assembles a cast on a running network; its daemons are stopped
// when the test ends, and their logs kept if it failed.
func newCastOn(t *testing.T, net *regtest.Network, opts Options) *Cast {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), castTimeout)
	defer cancel()

	start := time.Now()
	c, err := Assemble(ctx, net, opts,
		func(_ context.Context, o lsp.Options) (*lsp.Daemon, error) {
			return lsp.StartT(t, o), nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hooks != nil {
		t.Cleanup(func() {
			if err := c.Hooks.Close(context.Background()); err != nil {
				t.Errorf("webhook receiver: %v", err)
			}
		})
	}
	t.Logf("cast assembled in %v: bob %s, carol %s",
		time.Since(start).Round(time.Millisecond), c.Bob.APIURL,
		c.Carol.APIURL)

	return c
}

// testCtx is a context for one scenario, ended when the test ends.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)

	return ctx
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// timed logs how long a scenario took.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() {
		t.Logf("%s took %v", t.Name(), time.Since(start).Round(time.Millisecond))
	})
}
