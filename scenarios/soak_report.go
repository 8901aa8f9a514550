package scenarios

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// SoakRow is one row of the payments table: the plan's kind, the fate by
// the ledgers (or how far it got: not_created, unborn) and bob's reason.
type SoakRow struct {
	Kind   PayKind
	Fate   string
	Reason string
}

// SoakReport is what a soak did and what the ledgers show.
type SoakReport struct {
	Plan    SoakPlan
	Strikes []SoakStrike

	// Stream is how long the stream and the injector ran; Settle how long
	// everything took to end afterwards; Judge the ledger check.
	Stream, Settle, Judge time.Duration

	// Ledger is the judge's verdict, with bob's word checked against it.
	Ledger *Report

	// Rows count the payments by kind, fate and reason.
	Rows map[SoakRow]int

	// LongestWait is the longest time from carol taking a release to
	// alice's lnd saying SUCCEEDED, and which payment it was.
	LongestWait        time.Duration
	LongestWaitPayment int

	// Unfinished are payments bob did not call final and resolved by the
	// end.
	Unfinished []string

	// LndFaults are the stuck payments traced to lnd (LndFault), by
	// kind: violations still, whose cause is not asynclsp's.
	LndFaults map[LndFault][]string

	// LndFixed: the lnd nodes ran with the fix of scenarios/lndfix
	// (make soak LND_FIX=1).
	LndFixed bool

	// BrokenLinks are the links lnd failed for good after replaying an
	// add whose HTLC was gone (lnd's forwarding-package bug, fixed by
	// make soak LND_FIX=1), by node: a channel that carries nothing more.
	BrokenLinks []string

	// Incidents are what went wrong outside any payment: something struck
	// that did not come back, a process that exited on its own.
	Incidents []string

	// Notes are what went wrong in the payments' flows (an attempt alice
	// retried, a release refused): told, not failures.
	Notes []string
}

// OK reports whether the soak found nothing wrong.
func (r *SoakReport) OK() bool {
	return r.Ledger != nil && r.Ledger.OK() && len(r.Unfinished) == 0 &&
		len(r.Incidents) == 0 && len(r.BrokenLinks) == 0
}

// OnlyLnd reports whether every failure is a payment stuck by lnd
// (LndFaults): its stuck payments, the balances they leave off, and bob
// keeping those holds unfinished, as invariant 2 asks of him.
func (r *SoakReport) OnlyLnd() bool {
	if r.Ledger == nil || len(r.Incidents) > 0 {
		return false
	}
	lnd := map[string]bool{}
	for _, hs := range r.LndFaults {
		for _, h := range hs {
			lnd[h[:64]] = true
		}
	}
	for _, v := range r.Ledger.Violations {
		switch {
		case v.Kind == Stuck && lnd[v.Hash.String()]:
		case v.Kind == BalanceMismatch && v.Hash == (lntypes.Hash{}) &&
			len(lnd) > 0:
		default:
			return false
		}
	}
	for _, u := range r.Unfinished {
		if !lnd[unfinishedHash(u)] {
			return false
		}
	}

	return true
}

// unfinishedHash is the payment hash a line of Unfinished names.
func unfinishedHash(line string) string {
	for _, f := range strings.Fields(line) {
		if len(f) == 65 && f[64] == ':' {
			return f[:64]
		}
	}

	return ""
}

// Verdict sums the failures up in a line.
func (r *SoakReport) Verdict() string {
	if r.Ledger == nil {
		return "no ledger check"
	}

	return fmt.Sprintf("%d violations, %d payments unfinished at bob, %d "+
		"incidents, %d lnd nodes with a broken link", len(r.Ledger.Violations),
		len(r.Unfinished), len(r.Incidents), len(r.BrokenLinks))
}

// StruckKinds counts the strikes by kind.
func (r *SoakReport) StruckKinds() map[FaultKind]int {
	out := map[FaultKind]int{}
	for _, s := range r.Strikes {
		out[s.Kind]++
	}

	return out
}

// Print writes the report as tables.
func (r *SoakReport) Print(w io.Writer) {
	p := r.Plan
	fmt.Fprintf(w, "\nsoak: seed %d, %d faults and %d payments planned over %s; "+
		"stream %s, settle %s, ledger check %s\n", p.Seed, len(p.Faults),
		len(p.Payments), p.Span, round(r.Stream), round(r.Settle),
		round(r.Judge))
	replay, lndRun := p.Replay(), "lnd as released"
	if r.LndFixed {
		replay, lndRun = replay+" LND_FIX=1", "lnd with the fix of scenarios/lndfix"
	}
	fmt.Fprintf(w, "replay: %s (%s)\n", replay, lndRun)

	fmt.Fprintf(w, "\nfaults by kind (recovery: from the strike until "+
		"everything struck is back):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tplanned\tstruck\tfailed\tlongest recovery\t")
	planned := p.FaultCounts()
	total := [3]int{}
	for _, k := range FaultKinds {
		struck, failed, longest := 0, 0, time.Duration(0)
		for _, s := range r.Strikes {
			if s.Kind != k {
				continue
			}
			struck++
			if s.Err != "" {
				failed++
			}
			longest = max(longest, s.Took)
		}
		total[0] += planned[k]
		total[1] += struck
		total[2] += failed
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t\n", k, planned[k], struck,
			failed, dur(longest))
	}
	fmt.Fprintf(tw, "all\t%d\t%d\t%d\t\t\n", total[0], total[1], total[2])
	_ = tw.Flush()
	mined := 0
	for _, s := range r.Strikes {
		mined += s.Mined
	}
	fmt.Fprintf(w, "blocks mined by the bursts: %d\n", mined)

	fmt.Fprintf(w, "\npayments by fate (lnd's ledgers) and reason (bob's; on a "+
		"settled payment, why its last failed attempt failed):\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kind\tfate\treason\tpayments\t")
	rows := make([]SoakRow, 0, len(r.Rows))
	for row := range r.Rows {
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b SoakRow) int {
		ka, kb := slices.Index(PayKinds, a.Kind), slices.Index(PayKinds, b.Kind)
		if ka != kb {
			return ka - kb
		}
		if c := strings.Compare(a.Fate, b.Fate); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t\n", row.Kind, row.Fate,
			dashed(row.Reason), r.Rows[row])
	}
	_ = tw.Flush()
	if r.Ledger != nil {
		f := r.Ledger.Fates()
		fmt.Fprintf(w, "by the ledgers: %d settled, %d canceled, %d pending, "+
			"%d broken\n", f[FateSettled], f[FateCanceled], f[FatePending],
			f[FateBroken])
	}

	fmt.Fprintf(w, "\nviolations:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, k := range []ViolationKind{Lost, PaidTwice, Stuck, ForceClose,
		BalanceMismatch, WrongFate} {
		n := -1
		if r.Ledger != nil {
			n = r.Ledger.Count(k)
		}
		fmt.Fprintf(tw, "%s\t%d\t\n", k, n)
	}
	for _, f := range []LndFault{LndGhostPayment, LndCanceledButHeld} {
		fmt.Fprintf(tw, "  of them stuck by lnd: %s\t%d\t\n", f,
			len(r.LndFaults[f]))
	}
	fmt.Fprintf(tw, "lnd links broken by replays (lnd's bug)\t%d\t\n",
		len(r.BrokenLinks))
	if r.Ledger != nil {
		// Not violations: canceled, nothing held (judge.payment).
		fmt.Fprintf(tw, "told apart: canceled, bob's lnd still says in flight "+
			"(lnd's ghost, nothing held)\t%d\t\n", len(r.Ledger.LndGhosts))
	}
	fmt.Fprintf(tw, "unfinished at bob\t%d\t\n", len(r.Unfinished))
	fmt.Fprintf(tw, "incidents\t%d\t\n", len(r.Incidents))
	_ = tw.Flush()
	if r.LongestWait > 0 {
		fmt.Fprintf(w, "longest wait past a release (carol took it -> alice's "+
			"payment SUCCEEDED): %s (payment %d)\n", round(r.LongestWait),
			r.LongestWaitPayment)
	}

	list := func(title string, lines []string, most int) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s (%d):\n", title, len(lines))
		for i, l := range lines {
			if i == most {
				fmt.Fprintf(w, "  ... %d more\n", len(lines)-most)
				break
			}
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if r.Ledger != nil {
		var vs []string
		for _, v := range r.Ledger.Violations {
			vs = append(vs, v.String())
		}
		list("violations", vs, 50)
	}
	list("unfinished at bob", r.Unfinished, 50)
	list("lnd links broken by replays (scenarios/lndfix; make soak LND_FIX=1 "+
		"runs lnd with the fix)", r.BrokenLinks, 50)
	list("incidents", r.Incidents, 50)
	list("notes from the payments' flows", r.Notes, 30)
	if r.OK() {
		fmt.Fprintf(w, "\nsoak OK: nothing lost, paid twice or stuck, no force "+
			"close, every balance right to the msat\n")
	} else {
		fmt.Fprintf(w, "\nsoak FAILED: %s\n", r.Verdict())
	}
}

// dashed is s, or "-" if empty.
func dashed(s string) string {
	if s == "" {
		return "-"
	}

	return s
}
