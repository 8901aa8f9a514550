package scenarios

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lntypes"
)

// How a scale run tells that bob's restarted asynclspd tracks every hold.
const (
	// untrackedMetric is the gauge of holds not yet tracked after a
	// start, where the daemon exports it (issue 15's recovery).
	untrackedMetric = "asynclsp_sender_holds_untracked"

	// announcedLine is what today's daemon logs once a HELD hold's runner
	// has subscribed to its hold invoice and told the receiver LSP of it
	// (senderlsp/held.go); every resumed hold logs it once.
	announcedLine = "receiver LSP told of the held payment"

	// trackInterval is how often the log is read for it.
	trackInterval = 50 * time.Millisecond

	// inFlightMaxMetric is the most calls bob's asynclspd had in flight
	// to his lnd at once since it started.
	inFlightMaxMetric = "asynclsp_lnd_in_flight_max"
)

// RestartFigures are what a kill -9 of bob's asynclspd with N held cost.
type RestartFigures struct {
	// Ready is from the kill to /readyz answering 200; Tracked to every
	// hold tracked again, by TrackedBy; Held to bob's API listing every
	// payment HELD and his lnd every hold invoice ACCEPTED.
	Ready, Tracked, Held time.Duration
	TrackedBy            string

	// BobCPU and BobLndCPU are the CPU time bob's asynclspd and his lnd
	// used from the kill until every hold was tracked.
	BobCPU, BobLndCPU time.Duration

	// LndInFlightMax is the most calls the restarted asynclspd had in
	// flight to bob's lnd at once until every hold was tracked (its
	// asynclsp_lnd_in_flight_max; -1 where it could not be read).
	LndInFlightMax int

	// After is the usage once every hold is tracked again.
	After Snapshot
}

// restart kills bob's asynclspd with every payment held, starts it again
// and measures how long until it is ready and tracks every hold, then
// checks that every payment is still HELD.
func (s *scaleRun) restart(ctx context.Context) error {
	bob, net := s.c.Bob, s.c.Net
	r := &s.r.Restart
	offset, err := fileSize(bob.LogPath)
	if err != nil {
		return err
	}
	lndBefore, _ := proc.ReadUsage(net.Bob.PID())

	if err := bob.Kill(); err != nil {
		return err
	}
	killed := time.Now()
	links, err := s.c.Carol.Metric(ctx, reconnectsMetric)
	if err != nil {
		return err
	}
	if err := bob.Relaunch(); err != nil {
		return err
	}
	type readiness struct {
		after time.Duration
		err   error
	}
	ready := make(chan readiness, 1)
	go func() {
		err := bob.WaitReady(ctx)
		ready <- readiness{time.Since(killed), err}
	}()
	if r.TrackedBy, err = s.waitTracked(ctx, offset); err != nil {
		return err
	}
	r.Tracked = time.Since(killed)
	rd := <-ready
	if rd.err != nil {
		return rd.err
	}
	r.Ready = rd.after
	if u, err := proc.ReadUsage(bob.PID()); err == nil {
		r.BobCPU = u.CPU
	}
	if u, err := proc.ReadUsage(net.Bob.PID()); err == nil {
		r.BobLndCPU = u.CPU - lndBefore.CPU
	}
	r.LndInFlightMax = s.inFlightMax(ctx)
	s.cfg.Progress("bob's asynclspd ready %s after kill -9, every hold "+
		"tracked after %s (%s)", round(r.Ready), round(r.Tracked), r.TrackedBy)

	if err := s.checkHeld(ctx); err != nil {
		return err
	}
	r.Held = time.Since(killed)

	// Carol relays dave's releases over bob's embedded NATS server, which
	// died with him: she must be connected to the new one.
	err = poll(ctx, "carol back on bob's NATS", func(ctx context.Context) (bool, error) {
		n, err := s.c.Carol.Metric(ctx, reconnectsMetric)
		return n > links, err
	})
	if err != nil {
		return err
	}
	if err := s.c.Carol.WaitReady(ctx); err != nil {
		return err
	}
	r.After, err = s.snapshot(ctx, s.cfg.N)

	return err
}

// waitTracked waits until the restarted daemon tracks every hold: its
// untracked gauge reads 0 where it has one; else, as today's daemon offers
// no better sign, until its log (from offset) says of every hold that its
// runner subscribed to the hold invoice and told carol again. It returns
// which sign it went by.
func (s *scaleRun) waitTracked(ctx context.Context, offset int64) (string, error) {
	f, err := os.Open(s.c.Bob.LogPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", err
	}
	var (
		lines   int
		seen    int
		partial []byte
		buf     = make([]byte, 256<<10)
	)
	moved, scraped := time.Now(), time.Time{}
	for {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				chunk := append(partial, buf[:n]...)
				end := bytes.LastIndexByte(chunk, '\n') + 1
				lines += bytes.Count(chunk[:end], []byte(announcedLine))
				partial = append([]byte(nil), chunk[end:]...)
			}
			if err == io.EOF || n == 0 {
				break
			}
			if err != nil {
				return "", err
			}
		}
		if lines != seen {
			seen, moved = lines, time.Now()
		}
		if lines >= s.cfg.N {
			s.r.note("every hold tracked after the restart: asynclspd has " +
				"no sign of it; measured until its log said of every hold " +
				"that its runner subscribed to the hold invoice and told " +
				"carol again (/readyz comes before any hold is tracked)")
			return "log: " + announcedLine, nil
		}
		if time.Since(scraped) > countInterval && s.c.Bob.Running() {
			scraped = time.Now()
			if m, err := s.c.Bob.Scrape(ctx); err == nil {
				if v, ok := m.Sum(untrackedMetric); ok && v == 0 {
					return untrackedMetric + " = 0", nil
				}
			}
		}
		if !s.c.Bob.Running() {
			return "", fmt.Errorf("bob's asynclspd exited after its restart; "+
				"log: %s", s.c.Bob.LogPath)
		}
		if time.Since(moved) > stallTimeout {
			return "", fmt.Errorf("%w: %d of %d holds tracked after the "+
				"restart (%q in bob's log), none more for %s", ErrScale,
				lines, s.cfg.N, announcedLine, stallTimeout)
		}
		select {
		case <-time.After(trackInterval):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// inFlightMax reads the peak of bob's asynclspd's calls in flight to his
// lnd since it started; -1, with a note, where it cannot.
func (s *scaleRun) inFlightMax(ctx context.Context) int {
	m, err := s.c.Bob.Scrape(ctx)
	if err != nil {
		s.r.note("lnd calls in flight during the recovery: %v", err)
		return -1
	}
	v, ok := m.Sum(inFlightMaxMetric)
	if !ok {
		s.r.note("lnd calls in flight during the recovery: bob's /metrics "+
			"has no %s", inFlightMaxMetric)
		return -1
	}

	return int(v)
}

// checkHeld checks that bob's API lists every payment HELD and his lnd
// has every hold invoice ACCEPTED.
func (s *scaleRun) checkHeld(ctx context.Context) error {
	held := 0
	for p, err := range s.c.Operator.Payments(ctx, senderclient.ListOptions{
		States: []senderclient.State{senderclient.StateHeld}, Limit: 1000,
	}) {
		if err != nil {
			return err
		}
		if p != nil {
			held++
		}
	}
	if held != s.cfg.N {
		return fmt.Errorf("%w: bob's API lists %d of %d payments HELD",
			ErrScale, held, s.cfg.N)
	}

	invoices, err := s.c.Net.Bob.Client.ListInvoices(ctx)
	if err != nil {
		return err
	}
	ours := map[lntypes.Hash]bool{}
	for _, p := range s.c.Sent() {
		ours[p.Hash] = true
	}
	accepted := 0
	for _, inv := range invoices {
		if ours[inv.Hash] && inv.State == lnd.InvoiceAccepted {
			accepted++
		}
	}
	if accepted != s.cfg.N {
		return fmt.Errorf("%w: bob's lnd has %d of %d hold invoices "+
			"ACCEPTED", ErrScale, accepted, s.cfg.N)
	}

	return nil
}

// fileSize returns the size of the file at path.
func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}

	return fi.Size(), nil
}
