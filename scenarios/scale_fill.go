package scenarios

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/lsp"
)

// The fill of a scale run.
const (
	// createWindow is how many of the last creates before a checkpoint
	// its creates/s is measured over.
	createWindow = 500

	// stallTimeout: a wait fails when what it counts has not moved for
	// this long.
	stallTimeout = 2 * time.Minute

	// countInterval is how often a wait reads the counts again: a scrape
	// of bob's metrics counts his holds by state in SQLite.
	countInterval = 500 * time.Millisecond

	// fillPayTimeout is how long alice's lnd tries to pay one hold
	// invoice. A phase hands lnd all its payments at once (up to 5,000 at
	// the default checkpoints), and it locks them into the channels at
	// the pace of their commitments, 20 to 60 a second in make scale, so
	// the last ones wait minutes for their first attempt.
	fillPayTimeout = 30 * time.Minute

	// Bob's metrics.
	holdsMetric   = "asynclsp_sender_holds"
	cancelsMetric = "asynclsp_sender_cancels_total"
)

// ScalePoint is what a scale run measured at one checkpoint: the creates
// since the previous one, and bob's usage once all held.
//
// A phase creates its payments first, then has alice pay them: the creates
// measure what a create costs with the payments before them HELD (bob's
// API, his asynclspd and his lnd's invoice), and nothing else loads the
// machine meanwhile; the payments measure how fast lnd's channels take
// HTLCs, which costs more as a channel carries more.
type ScalePoint struct {
	Snapshot

	// Creates is how many payments were created since the previous
	// checkpoint; Window how many of the last of them CreateRate is over.
	Creates, Window int

	// CreateRate is creates/s over the last Window creates before the
	// checkpoint, and PhaseRate over all of Creates.
	CreateRate, PhaseRate float64

	// CreateP50 and CreateP99 are the latencies of bob's API creates.
	CreateP50, CreateP99 time.Duration

	// HeldRate is payments/s from alice's first payment of the phase
	// until all of them are HELD.
	HeldRate float64

	// ToHeld is from the first of Creates until all are HELD.
	ToHeld time.Duration
}

// fill reads what the processes use idle, then creates the payments up to
// each checkpoint, has alice pay each, waits until all are HELD and
// measures.
func (s *scaleRun) fill(ctx context.Context) error {
	s.ids = make([]string, s.cfg.N)
	var err error
	if s.r.Idle, err = s.snapshot(ctx, 0); err != nil {
		return err
	}
	prev := 0
	for _, k := range s.cfg.Checkpoints {
		p, err := s.phase(ctx, prev, k)
		if err != nil {
			return err
		}
		s.r.Points = append(s.r.Points, p)
		s.r.ToHeld += p.ToHeld
		s.cfg.Progress("held %d: %.1f creates/s (last %d), p50 %s, p99 %s; "+
			"%.1f held/s; all HELD %s after the first create; asynclspd "+
			"RSS %s, %.0f goroutines", k, p.CreateRate, p.Window,
			round(p.CreateP50), round(p.CreateP99), p.HeldRate,
			round(p.ToHeld), mib(p.Bob.RSS), p.Goroutines)
		prev = k
	}

	return nil
}

// phase creates payments from..to-1, then has alice pay them, and waits
// until all to are HELD.
func (s *scaleRun) phase(ctx context.Context, from, to int) (ScalePoint, error) {
	n := to - from
	done := make([]time.Time, n)
	took := make([]time.Duration, n)
	invoices := make([]string, n)
	var created atomic.Int64
	start := time.Now()
	err := each(ctx, n, s.cfg.Concurrency, func(ctx context.Context, j int) error {
		i := from + j
		t0 := time.Now()
		p, err := s.c.Create(ctx, s.cfg.amount(), "")
		if err != nil {
			return fmt.Errorf("payment %d: %w", i, err)
		}
		done[j], took[j], s.ids[i], invoices[j] = time.Now(), time.Since(t0), p.ID,
			p.HoldInvoice
		if c := created.Add(1); c%createWindow == 0 {
			s.cfg.Progress("created %d", from+int(c))
		}
		return nil
	})
	if err != nil {
		return ScalePoint{}, err
	}
	p := ScalePoint{Creates: n}
	p.PhaseRate, p.CreateRate, p.Window = rates(start, done)
	p.CreateP50, p.CreateP99 = quantile(took, 0.5), quantile(took, 0.99)

	alice := s.c.Net.Alice.Client
	paying := time.Now()
	err = each(ctx, n, s.cfg.Concurrency, func(ctx context.Context, j int) error {
		i := from + j
		// lnd pays on once it has taken the payment; nobody needs to
		// follow each of N payments.
		sub, err := alice.SendPayment(ctx, lnd.SendPaymentRequest{
			Invoice:         invoices[j],
			Timeout:         fillPayTimeout,
			OutgoingChanIDs: []uint64{s.chans[i%len(s.chans)]},
		})
		if err != nil {
			return fmt.Errorf("alice pays hold invoice %d: %w", i, err)
		}
		sub.Close()
		return nil
	})
	if err != nil {
		return p, err
	}
	if err := s.waitHolds(ctx, "HELD", to); err != nil {
		return p, err
	}
	p.HeldRate = float64(n) / time.Since(paying).Seconds()
	p.ToHeld = time.Since(start)
	p.Snapshot, err = s.snapshot(ctx, to)

	return p, err
}

// rates returns the creates/s of a phase that began at start with creates
// done at done: over all of them, and over the last createWindow (or all,
// if fewer), with the window's size.
func rates(start time.Time, done []time.Time) (all, last float64, window int) {
	if len(done) == 0 {
		return 0, 0, 0
	}
	t := slices.Clone(done)
	slices.SortFunc(t, func(a, b time.Time) int { return a.Compare(b) })
	end := t[len(t)-1]
	all = float64(len(t)) / end.Sub(start).Seconds()
	window = min(createWindow, len(t))
	from := start
	if window < len(t) {
		from = t[len(t)-window-1]
	}

	return all, float64(window) / end.Sub(from).Seconds(), window
}

// quantile returns the q quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)

	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// waitHolds waits until bob counts at least want holds in state. It fails
// as soon as one is canceled, or when the count stalls.
func (s *scaleRun) waitHolds(ctx context.Context, state string, want int) error {
	var last float64
	moved, logged := time.Now(), time.Now()
	for {
		m, err := s.c.Bob.Scrape(ctx)
		if err != nil {
			return err
		}
		got, _ := m.Sum(holdsMetric, "state", state)
		if canceled, _ := m.Sum(holdsMetric, "state", "CANCELED"); canceled > 0 {
			return fmt.Errorf("%w: %.0f of the payments canceled (%s); "+
				"bob's log: %s", ErrScale, canceled, cancelReasons(m),
				s.c.Bob.LogPath)
		}
		if int(got) >= want {
			return nil
		}
		if got != last {
			last, moved = got, time.Now()
		}
		if time.Since(logged) > 10*time.Second {
			s.cfg.Progress("%.0f of %d %s", got, want, state)
			logged = time.Now()
		}
		if time.Since(moved) > stallTimeout {
			return fmt.Errorf("%w: %.0f of %d payments %s, none more for %s",
				ErrScale, got, want, state, stallTimeout)
		}
		select {
		case <-time.After(countInterval):
		case <-ctx.Done():
			return fmt.Errorf("%.0f of %d payments %s: %w", got, want, state,
				ctx.Err())
		}
	}
}

// cancelReasons lists bob's cancels by reason.
func cancelReasons(m lsp.Samples) string {
	out := ""
	for series, v := range m {
		if len(series) > len(cancelsMetric) && series[:len(cancelsMetric)] == cancelsMetric {
			out += fmt.Sprintf("%s %.0f ", series[len(cancelsMetric):], v)
		}
	}

	return out
}
