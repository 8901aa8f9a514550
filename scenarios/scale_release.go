package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
)

// scaleReleaseTTL is how long the releases signed before a scale run's
// release phase are valid: long enough for every one to be posted.
const scaleReleaseTTL = 2 * time.Hour

// Throughput is how many payments ended in how long.
type Throughput struct {
	Count int
	Took  time.Duration
}

// PerSecond is the throughput in payments per second.
func (t Throughput) PerSecond() float64 {
	if t.Took <= 0 {
		return 0
	}

	return float64(t.Count) / t.Took.Seconds()
}

func (t Throughput) String() string {
	return fmt.Sprintf("%d in %s, %.1f/s", t.Count, round(t.Took), t.PerSecond())
}

// ReleaseFigures are what releasing every held payment took.
type ReleaseFigures struct {
	// Signed is how long dave's lnd took to sign every release, off the
	// clock.
	Signed time.Duration

	// Posted is from the first post of a release to carol until every
	// post was answered.
	Posted time.Duration

	// Settled is from the first post until alice's lnd had every payment
	// SUCCEEDED.
	Settled Throughput

	// CPU is what the processes used meanwhile.
	CPU CPU

	// Tenths is the throughput of each tenth of the payments to settle,
	// in order: the first while every other one is still held on the
	// alice -> bob channels, the last with them nearly empty.
	Tenths []Throughput
}

// tenths splits the times at which payments succeeded, since start, into
// ten equal counts and gives each one's throughput.
func tenths(start time.Time, at []time.Time) []Throughput {
	if len(at) < 10 {
		return nil
	}
	at = slices.Clone(at)
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var out []Throughput
	prev, from := start, 0
	for i := 1; i <= 10; i++ {
		to := len(at) * i / 10
		out = append(out, Throughput{Count: to - from, Took: at[to-1].Sub(prev)})
		prev, from = at[to-1], to
	}

	return out
}

// release has dave's wallet sign a release of every held payment, then
// post them all to carol, cfg.Concurrency at a time, and waits until
// alice's lnd has every payment SUCCEEDED and bob every one SETTLED.
func (s *scaleRun) release(ctx context.Context) error {
	r := &s.r.Release
	start := time.Now()
	rels := make([]string, len(s.ids))
	err := each(ctx, len(s.ids), s.cfg.Concurrency, func(ctx context.Context, i int) error {
		it, err := s.item(ctx, s.ids[i])
		if err != nil {
			return fmt.Errorf("dave's item for payment %s: %w", s.ids[i], err)
		}
		if it.State != receiverclient.StatePending {
			return fmt.Errorf("%w: dave's item for payment %s is %s",
				ErrScale, s.ids[i], it.State)
		}
		rels[i], err = signReleaseFor(ctx, it, s.c.Net.Dave.Client,
			scaleReleaseTTL)
		return err
	})
	if err != nil {
		return err
	}
	r.Signed = time.Since(start)
	s.cfg.Progress("dave signed %d releases in %s", len(rels), round(r.Signed))

	// Alice's lnd says when each payment succeeds, on one stream that
	// first replays every payment in flight: once all of ours were seen,
	// no update can be missed.
	t := newPaymentTally(s.c.Sent())
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ended := make(chan error, 1)
	go func() { ended <- s.c.Net.Alice.TrackPayments(tctx, t.update) }()
	if err := t.wait(ctx, ended, "alice's payments in flight", t.seen); err != nil {
		return err
	}

	start = time.Now()
	cpu := s.meterCPU()
	err = each(ctx, len(rels), s.cfg.Concurrency, func(ctx context.Context, i int) error {
		_, err := s.c.Dave.PostReleaseRetry(ctx, rels[i])
		if err != nil {
			return fmt.Errorf("dave posts the release of %s: %w", s.ids[i], err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.Posted = time.Since(start)
	s.cfg.Progress("dave posted %d releases to carol in %s", len(rels),
		round(r.Posted))
	if err := t.wait(ctx, ended, "alice's payments SUCCEEDED", t.succeeded); err != nil {
		return err
	}
	r.Settled = Throughput{Count: len(rels), Took: time.Since(start)}
	r.CPU = cpu.used()
	t.mu.Lock()
	r.Tenths = tenths(start, t.succeededAt)
	t.mu.Unlock()
	s.cfg.Progress("every payment settled: %s", r.Settled)

	return s.waitHolds(ctx, "SETTLED", s.cfg.N)
}

// ledger judges the run by every lnd's records: each payment settled
// exactly once, nothing stuck, every balance right to the msat.
func (s *scaleRun) ledger(ctx context.Context) error {
	report, err := s.c.Judge(ctx, Run{Sent: Expect(s.c.Sent(), FateSettled),
		Before: s.before, Settle: stallTimeout, CommitFees: true})
	if err != nil {
		return err
	}
	s.r.Ledger = report
	if !report.OK() {
		return fmt.Errorf("%w: the ledgers show %s", ErrScale,
			truncate(report.String(), 20))
	}
	s.r.Settled, err = s.snapshot(ctx, 0)

	return err
}

// paymentTally follows the state of a run's payments at alice's lnd.
type paymentTally struct {
	mu     sync.Mutex
	status map[lntypes.Hash]lnrpc.Payment_PaymentStatus
	want   int

	// nSeen payments were told of, nSucceeded succeeded; failed is one
	// that failed.
	nSeen, nSucceeded int
	failed            *lntypes.Hash

	// succeededAt is when each success was told of.
	succeededAt []time.Time

	// changed is closed and replaced at every change.
	changed chan struct{}
}

func newPaymentTally(sent []Sent) *paymentTally {
	t := &paymentTally{status: map[lntypes.Hash]lnrpc.Payment_PaymentStatus{},
		want: len(sent), changed: make(chan struct{})}
	for _, p := range sent {
		t.status[p.Hash] = lnrpc.Payment_UNKNOWN
	}

	return t
}

// update notes an update of one of alice's payments. A final state stays:
// the stream may repeat an older one.
func (t *paymentTally) update(p *lnrpc.Payment) {
	hash, err := lntypes.MakeHashFromStr(p.PaymentHash)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ours := t.status[hash]
	if !ours || old == p.Status || old == lnrpc.Payment_SUCCEEDED ||
		old == lnrpc.Payment_FAILED {

		return
	}
	t.status[hash] = p.Status
	if old == lnrpc.Payment_UNKNOWN {
		t.nSeen++
	}
	switch p.Status {
	case lnrpc.Payment_SUCCEEDED:
		t.nSucceeded++
		t.succeededAt = append(t.succeededAt, time.Now())
	case lnrpc.Payment_FAILED:
		t.failed = &hash
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// seen reports whether the stream told of every payment, and how many.
func (t *paymentTally) seen() (int, bool, error) {
	return t.nSeen, t.nSeen == t.want, nil
}

// succeeded reports whether every payment succeeded, and how many did; it
// fails if one failed.
func (t *paymentTally) succeeded() (int, bool, error) {
	if t.failed != nil {
		return t.nSucceeded, false, fmt.Errorf("%w: alice's payment %s "+
			"failed", ErrScale, t.failed)
	}

	return t.nSucceeded, t.nSucceeded == t.want, nil
}

// wait waits until cond (called under the lock) holds, fails, or stalls,
// or the stream ends.
func (t *paymentTally) wait(ctx context.Context, ended <-chan error, what string,
	cond func() (int, bool, error)) error {

	for {
		t.mu.Lock()
		n, ok, err := cond()
		changed := t.changed
		t.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-changed:
		case err := <-ended:
			return fmt.Errorf("%s: %d of %d: %w", what, n, t.want,
				errors.Join(err, errors.New("the stream ended")))
		case <-time.After(stallTimeout):
			return fmt.Errorf("%w: %s: %d of %d, none more for %s", ErrScale,
				what, n, t.want, stallTimeout)
		case <-ctx.Done():
			return fmt.Errorf("%s: %d of %d: %w", what, n, t.want, ctx.Err())
		}
	}
}

// truncate keeps the first lines of s.
func truncate(s string, lines int) string {
	n := 0
	for i, c := range s {
		if c == '\n' {
			if n++; n == lines {
				return s[:i] + "\n  ..."
			}
		}
	}

	return s
}
