package scenarios

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// ScaleReport is what a scale run measured.
type ScaleReport struct {
	N, Channels, Concurrency int
	AmountSat                int64

	// Network is how long the network took to start; ChannelsIn the
	// alice -> bob channels; InvoicesIn dave's invoices.
	Network, ChannelsIn, InvoicesIn time.Duration

	// Idle is the usage before the first create; Points at each
	// checkpoint; Settled once every payment settled and the ledgers are
	// clean.
	Idle    Snapshot
	Points  []ScalePoint
	Settled Snapshot

	// ToHeld is how long bringing all N to HELD took, without the
	// measurements at the checkpoints.
	ToHeld time.Duration

	Restart RestartFigures
	Release ReleaseFigures

	// Direct is lnd's own throughput: alice paying dave directly over
	// the same route, as many at once.
	Direct    Throughput
	DirectCPU CPU

	// HeldDirect is the same with the N held, on channels as loaded as
	// the releases find them.
	HeldDirect    Throughput
	HeldDirectCPU CPU

	// Ledger is the judge's verdict on every lnd's records.
	Ledger *Report

	// Notes say what could not be measured.
	Notes []string
}

// perHeld returns (now - idle) / held in KiB, or "-".
func perHeld(now, idle int64, held int) string {
	if held == 0 || now == 0 || idle == 0 {
		return "-"
	}

	return fmt.Sprintf("%.1f", float64(now-idle)/float64(held)/1024)
}

// Print writes the report as tables.
func (r *ScaleReport) Print(w io.Writer) {
	fmt.Fprintf(w, "\nscale: N=%d payments held at bob at once, over %d private "+
		"alice -> bob channels; %d sat each; %d creates, releases and direct "+
		"payments in flight\n", r.N, r.Channels, r.AmountSat, r.Concurrency)
	fmt.Fprintf(w, "setup (off the clock): network %s, channels %s, invoices %s\n",
		round(r.Network), round(r.ChannelsIn), round(r.InvoicesIn))

	fmt.Fprintf(w, "\nfill: each row's payments created through bob's API "+
		"with the rows before HELD, then paid by alice; creates/s over the "+
		"last creates before the row's count; held/s from alice's first "+
		"payment until all HELD; CPU used since the row before\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "held\tcreates/s\t(over)\tcreate p50\tp99\theld/s\tto HELD\t"+
		"CPU asynclspd\tbob lnd\talice lnd\tcarol\t")
	prev := r.Idle
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%d\t%.1f\t%d\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n",
			p.Held, p.CreateRate, p.Window, dur(p.CreateP50),
			dur(p.CreateP99), p.HeldRate, dur(p.ToHeld), dur(p.Bob.CPU-prev.Bob.CPU),
			dur(p.BobLnd.CPU-prev.BobLnd.CPU),
			dur(p.AliceLnd.CPU-prev.AliceLnd.CPU),
			dur(p.Carol.CPU-prev.Carol.CPU))
		prev = p.Snapshot
	}
	_ = tw.Flush()
	if n := len(r.Points); n > 1 {
		first, last := r.Points[0], r.Points[n-1]
		fmt.Fprintf(w, "all %d HELD in %s; creates/s at %d held over at %d "+
			"held: %.2f; held/s: %.2f\n", r.N, round(r.ToHeld), last.Held,
			first.Held, ratio(last.CreateRate, first.CreateRate),
			ratio(last.HeldRate, first.HeldRate))
	} else if n == 1 {
		fmt.Fprintf(w, "all %d HELD in %s\n", r.N, round(r.ToHeld))
	}

	fmt.Fprintf(w, "\nmemory (MiB; per held payment in KiB, against idle; "+
		"heap: Go heap in use after a forced GC):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "when\theld\tasynclspd RSS\tanon\tfile\tPSS\t"+
		"KiB/held RSS\tanon\theap\tgoroutines\t/held\t"+
		"alice lnd RSS\tbob lnd RSS\tcarol RSS\t")
	row := func(when string, s Snapshot) {
		g := "-"
		if s.Held > 0 {
			g = fmt.Sprintf("%.2f", (s.Goroutines-r.Idle.Goroutines)/float64(s.Held))
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%.1f\t%.0f\t%s\t%.0f\t%.0f\t%.0f\t\n",
			when, s.Held, mb(s.Bob.RSS), mb(s.Bob.RSSAnon), mb(s.Bob.RSSFile),
			mb(s.Bob.PSS), perHeld(s.Bob.RSS, r.Idle.Bob.RSS, s.Held),
			perHeld(s.Bob.RSSAnon, r.Idle.Bob.RSSAnon, s.Held),
			s.HeapInuse/(1<<20), s.Goroutines, g, mb(s.AliceLnd.RSS),
			mb(s.BobLnd.RSS), mb(s.Carol.RSS))
	}
	row("idle", r.Idle)
	for _, p := range r.Points {
		row("held", p.Snapshot)
	}
	if r.Restart.After.Held > 0 {
		row("restarted", r.Restart.After)
	}
	if r.Settled.Goroutines > 0 {
		row("settled", r.Settled)
	}
	_ = tw.Flush()

	rs := r.Restart
	if rs.Tracked > 0 {
		inFlight := "-"
		if rs.LndInFlightMax >= 0 {
			inFlight = fmt.Sprint(rs.LndInFlightMax)
		}
		fmt.Fprintf(w, "\nkill -9 of bob's asynclspd with %d held: ready (/readyz) "+
			"after %s; every hold tracked after %s (by %s); every payment "+
			"HELD in the API and ACCEPTED at lnd after %s; CPU until tracked: "+
			"asynclspd %s, bob's lnd %s; most calls in flight to bob's lnd "+
			"at once until tracked: %s\n", r.N, round(rs.Ready),
			round(rs.Tracked), rs.TrackedBy, round(rs.Held), round(rs.BobCPU),
			round(rs.BobLndCPU), inFlight)
	}
	rl := r.Release
	if rl.Settled.Count > 0 {
		fmt.Fprintf(w, "\nreleases: dave signed %d in %s (off the clock); "+
			"posted to carol in %s; settled: %s\n  CPU: %s\n", rl.Settled.Count,
			round(rl.Signed), round(rl.Posted), rl.Settled, rl.CPU)
		if len(rl.Tenths) > 0 {
			fmt.Fprintf(w, "  settled/s by tenth, as the held HTLCs leave the "+
				"alice -> bob channels:")
			for _, t := range rl.Tenths {
				fmt.Fprintf(w, " %.1f", t.PerSecond())
			}
			fmt.Fprintln(w)
		}
	}
	if r.Direct.Count > 0 {
		fmt.Fprintf(w, "direct baseline (alice -> bob -> carol -> dave, "+
			"same channels): %s\n  CPU: %s\n", r.Direct, r.DirectCPU)
		if rl.Settled.Count > 0 {
			fmt.Fprintf(w, "release throughput / direct: %.2f\n",
				ratio(rl.Settled.PerSecond(), r.Direct.PerSecond()))
		}
	}
	if r.HeldDirect.Count > 0 {
		fmt.Fprintf(w, "direct with the %d held (same channels, as loaded as "+
			"the releases find them): %s\n  CPU: %s\n", r.N, r.HeldDirect,
			r.HeldDirectCPU)
		if rl.Settled.Count > 0 {
			fmt.Fprintf(w, "release throughput / direct with the %d held: %.2f\n",
				r.N, ratio(rl.Settled.PerSecond(), r.HeldDirect.PerSecond()))
		}
	}
	if r.Ledger != nil {
		fmt.Fprintf(w, "\nledger: %s; lost %d, paid twice %d, stuck %d\n",
			truncate(r.Ledger.String(), 10), r.Ledger.Count(Lost),
			r.Ledger.Count(PaidTwice), r.Ledger.Count(Stuck))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nnot measured:\n  %s\n", strings.Join(r.Notes, "\n  "))
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}

	return round(d).String()
}

func dash(n int) string {
	if n == 0 {
		return "-"
	}

	return fmt.Sprint(n)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}

	return a / b
}
