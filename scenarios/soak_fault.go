package scenarios

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// SoakStrike is one fault as it struck.
type SoakStrike struct {
	SoakFault

	// Struck is when it struck, from the start of the stream (later than
	// At if the strike before it took long); Took is how long it took,
	// recovery included.
	Struck, Took time.Duration

	// Mined is how many blocks a burst mined (FaultMine).
	Mined int

	// Err says why what it struck did not come back.
	Err string
}

// inject strikes the plan's faults in turn, each at its offset (or as soon
// as the one before it is over), and logs each. Whatever happens, it
// leaves everything running.
func (s *soakRun) inject(ctx context.Context) {
	for n, f := range s.plan.Faults {
		if !s.until(ctx, f.At) {
			return
		}
		st := SoakStrike{SoakFault: f, Struck: time.Since(s.t0)}
		fctx, cancel := context.WithTimeout(ctx, soakFaultTimeout)
		mined, err := s.strike(fctx, f)
		cancel()
		st.Took, st.Mined = time.Since(s.t0)-st.Struck, mined
		what := f.String()
		if f.Kind == FaultMine {
			what = fmt.Sprintf("%s at +%s, %d of %d blocks", f.Kind, f.At,
				mined, f.Blocks)
		}
		if err != nil {
			st.Err = err.Error()
			s.incident("fault %d/%d %s: %v", n+1, len(s.plan.Faults),
				what, err)
		} else {
			s.progress("fault %d/%d %s: back in %s", n+1,
				len(s.plan.Faults), what, round(st.Took))
		}
		s.mu.Lock()
		s.r.Strikes = append(s.r.Strikes, st)
		s.mu.Unlock()
		s.bringBack(ctx)
	}
}

// strike does one fault and undoes it; for a burst of blocks, it returns
// how many it mined.
func (s *soakRun) strike(ctx context.Context, f SoakFault) (int, error) {
	c := s.c
	switch f.Kind {
	case FaultKillBob:
		return 0, s.killRestart(ctx, c.Bob, f.For, c.RestartBob)
	case FaultKillCarol:
		return 0, s.killRestart(ctx, c.Carol, f.For, c.RestartCarol)
	case FaultFreezeBob:
		return 0, s.freeze(ctx, c.Bob, f.For)
	case FaultFreezeCarol:
		return 0, s.freeze(ctx, c.Carol, f.For)
	case FaultLndBob:
		return 0, s.restartLnd(ctx, c.Net.Bob, f.For)
	case FaultLndCarol:
		return 0, s.restartLnd(ctx, c.Net.Carol, f.For)
	case FaultNATSNode:
		if err := s.nats.StopNode(f.Node); err != nil {
			return 0, err
		}
		pause(ctx, f.For)
		return 0, s.nats.StartNode(f.Node)
	case FaultMine:
		return s.mine(ctx, f.Blocks)
	}

	return 0, fmt.Errorf("unknown fault %q", f.Kind)
}

// killRestart kills d with SIGKILL, leaves it dead for down and restarts
// it.
func (s *soakRun) killRestart(ctx context.Context, d *lsp.Daemon,
	down time.Duration, restart func(context.Context) error) error {

	if err := d.Kill(); err != nil {
		return err
	}
	pause(ctx, down)

	return restart(ctx)
}

// freeze stops d with SIGSTOP for d, then continues it.
func (s *soakRun) freeze(ctx context.Context, d *lsp.Daemon,
	frozen time.Duration) error {

	if err := d.Pause(); err != nil {
		return err
	}
	pause(ctx, frozen)

	return d.Resume()
}

// restartLnd stops an LSP's lnd under its daemon, leaves it down for down,
// and starts it again, its channels active.
func (s *soakRun) restartLnd(ctx context.Context, n *regtest.Node,
	down time.Duration) error {

	if err := n.Stop(ctx); err != nil {
		return err
	}
	pause(ctx, down)
	if err := n.Start(ctx); err != nil {
		return err
	}
	// Bob's lnd held the restart's failures against the route to dave
	// for an hour: an operator whose peer restarted does the same.
	return s.c.Net.Bob.ForgetFailures(ctx)
}

// mine mines at most blocks, short of the deadline of every hold dave is
// to release.
func (s *soakRun) mine(ctx context.Context, blocks int) (int, error) {
	height, err := s.c.Net.Height(ctx)
	if err != nil {
		return 0, err
	}

	return s.mineSteps(ctx, min(blocks, s.mineCap(height)))
}

// mineSteps mines n blocks a block at a time, every lnd synced to each: a
// payment on its way to dave meets at most the block or two lnd pads its
// final CLTV for, as on a real chain (a burst of 30 at once would have
// dave refuse it as expiring too soon).
func (s *soakRun) mineSteps(ctx context.Context, n int) (int, error) {
	for i := range max(0, n) {
		if err := s.c.Net.Mine(ctx, 1); err != nil {
			return i, err
		}
	}

	return max(0, n), nil
}

// bringBack starts whatever is down and should not be: a daemon that
// exited on its own (an incident), one a failed strike left down or
// frozen, an lnd, a NATS node.
func (s *soakRun) bringBack(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
		soakFaultTimeout)
	defer cancel()
	for i := range s.nats.Nodes() {
		if !s.nats.Running(i) {
			if err := s.nats.StartNode(i); err != nil {
				s.incident("nats node %d does not start: %v", i+1, err)
			}
		}
	}
	for _, n := range []*regtest.Node{s.c.Net.Bob, s.c.Net.Carol} {
		if !n.Running() {
			s.incident("lnd %s is down", n.Name)
			if err := n.Start(ctx); err != nil {
				s.incident("lnd %s does not start: %v", n.Name, err)
			}
		}
	}
	for _, d := range []struct {
		d       *lsp.Daemon
		restart func(context.Context) error
	}{{s.c.Bob, s.c.RestartBob}, {s.c.Carol, s.c.RestartCarol}} {
		_ = d.d.Resume()
		if d.d.Running() {
			continue
		}
		s.incident("asynclspd %s is not running (%v)", d.d.Name,
			d.d.ExitErr())
		if err := d.restart(ctx); err != nil {
			s.incident("asynclspd %s does not restart: %v", d.d.Name, err)
		}
	}
	// A daemon started while bob's lnd was away may need its readiness.
	for _, d := range []*lsp.Daemon{s.c.Bob, s.c.Carol} {
		if err := d.WaitReady(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.incident("asynclspd %s is not ready: %v", d.Name, err)
		}
	}
}
