package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Fate is how an async payment ended, by the lnd nodes' own records.
type Fate string

// The fates of a payment.
const (
	// FateSettled: settled exactly once: alice paid the amount and bob's
	// fee and holds the preimage, bob's hold invoice is settled, dave's
	// invoice is settled for the amount.
	FateSettled Fate = "settled"

	// FateCanceled: alice's funds are back: her payment failed (or was
	// never made), bob's hold invoice is canceled, dave was not paid.
	FateCanceled Fate = "canceled"

	// FatePending: something is still in flight (a Stuck violation says
	// what).
	FatePending Fate = "pending"

	// FateBroken: final, but the records disagree (the violations say
	// how).
	FateBroken Fate = "broken"
)

// Sent is one async payment a run made, and the fate it should have.
type Sent struct {
	Hash       lntypes.Hash
	AmountMsat lnwire.MilliSatoshi // what dave should get
	FeeMsat    lnwire.MilliSatoshi // bob's fee, on top of it

	// Want is the fate the run expects, FateSettled or FateCanceled;
	// empty for either.
	Want Fate
}

// ViolationKind names what went wrong.
type ViolationKind string

// The kinds of violation, each counted once per payment it concerns.
const (
	// Lost: money left someone and did not arrive: alice paid and dave
	// was not, or bob paid dave and gave alice her funds back.
	Lost ViolationKind = "lost"

	// PaidTwice: alice paid more than once, or bob paid dave more than
	// once.
	PaidTwice ViolationKind = "paid_twice"

	// Stuck: an HTLC still pending on a channel, a payment still in
	// flight, a hold invoice not final.
	Stuck ViolationKind = "stuck"

	// ForceClose: a channel closed by force, or closing (one per
	// channel, however many nodes see it).
	ForceClose ViolationKind = "force_close"

	// BalanceMismatch: an amount off by even one msat: a payment's
	// (alice's payment, the hold, bob's payment, dave's invoice), or a
	// node's channel balance against what the settled payments moved.
	BalanceMismatch ViolationKind = "balance_mismatch"

	// WrongFate: final in another fate than the run expected, or with
	// records missing.
	WrongFate ViolationKind = "wrong_fate"
)

// Violation is one thing the ledgers show went wrong.
type Violation struct {
	Kind ViolationKind

	// Hash is the payment it concerns; zero for a node's or a channel's
	// (a force close, a balance).
	Hash lntypes.Hash

	// Node is where it was seen, if at one node.
	Node string

	// Detail says what the records show.
	Detail string
}

func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(string(v.Kind))
	if v.Hash != (lntypes.Hash{}) {
		fmt.Fprintf(&b, " %s", v.Hash)
	}
	if v.Node != "" {
		fmt.Fprintf(&b, " at %s", v.Node)
	}
	fmt.Fprintf(&b, ": %s", v.Detail)

	return b.String()
}

// Verdict is the fate of one payment.
type Verdict struct {
	Sent
	Fate Fate

	// RoutingFeeMsat is what bob paid carol to reach dave, when settled.
	RoutingFeeMsat lnwire.MilliSatoshi
}

// Report is the judge's answer: every payment's fate and every violation,
// none of which stopped the check.
type Report struct {
	Payments   []Verdict
	Violations []Violation

	// LndGhosts are payments canceled with nothing held, whose outbound
	// payment bob's lnd still calls in flight though nothing can complete
	// it (judge.payment): lnd's record, not money. Told, not violations.
	LndGhosts []lntypes.Hash
}

// OK reports whether there is no violation.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Count returns how many violations of kind there are.
func (r *Report) Count(kind ViolationKind) int {
	n := 0
	for _, v := range r.Violations {
		if v.Kind == kind {
			n++
		}
	}

	return n
}

// Fates counts the payments by fate.
func (r *Report) Fates() map[Fate]int {
	out := map[Fate]int{}
	for _, p := range r.Payments {
		out[p.Fate]++
	}

	return out
}

// String sums the report up, then lists the violations.
func (r *Report) String() string {
	var b strings.Builder
	fates := r.Fates()
	fmt.Fprintf(&b, "%d payments: %d settled, %d canceled, %d pending, "+
		"%d broken; %d violations", len(r.Payments), fates[FateSettled],
		fates[FateCanceled], fates[FatePending], fates[FateBroken],
		len(r.Violations))
	if len(r.Violations) > 0 {
		b.WriteString(" (")
		for i, k := range []ViolationKind{Lost, PaidTwice, Stuck, ForceClose,
			BalanceMismatch, WrongFate} {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, r.Count(k))
		}
		b.WriteString(")")
	}
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "\n  %s", v)
	}

	return b.String()
}

// Ledger is what one lnd node records.
type Ledger struct {
	Payments []lnd.Payment
	Invoices []lnd.Invoice

	// Channels are the open channels, with their pending HTLCs.
	Channels []lnd.Channel
	Pending  lnd.PendingChannels
	Closed   []lnd.ClosedChannel

	// BalanceMsat is the local balance of the open channels, as
	// Balances reads it.
	BalanceMsat int64

	// Height is the node's best block when its records were read.
	Height uint32

	// DustMsat is how far BalanceMsat may be off by lnd's rounding, when
	// it counts the commitment fees (Run.CommitFees): the fractions of a
	// satoshi that lnd's commit_fee holds, under 2 sat a channel the node
	// opened, before and after alike.
	DustMsat int64
}

// Ledgers are the records of the network's nodes, by name (regtest.Alice,
// ...).
type Ledgers map[string]*Ledger

// Judge judges the run's payments by the nodes' ledgers: each payment's
// fate, and every violation, all collected. before are the channel
// balances when the run began (nil: no balance check); the run must have
// moved money only by the payments in sent.
func Judge(sent []Sent, before Balances, l Ledgers) *Report {
	j := judge{l: l, report: &Report{}, known: map[lntypes.Hash]bool{}}
	for _, s := range sent {
		j.known[s.Hash] = true
	}
	for _, s := range sent {
		j.payment(s)
	}
	j.strayHTLCs()
	j.closes()
	if before != nil {
		j.balances(before)
	}

	return j.report
}

// judge is one run of Judge.
type judge struct {
	l      Ledgers
	report *Report
	known  map[lntypes.Hash]bool
}

// nodes are the ledgers' node names in payment order, then any other.
func (j *judge) nodes() []string {
	order := []string{regtest.Alice, regtest.Bob, regtest.Carol, regtest.Dave}
	var out []string
	for _, n := range order {
		if j.l[n] != nil {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range j.l {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)

	return append(out, rest...)
}

// ledger returns a node's ledger, empty if the node was not read.
func (j *judge) ledger(node string) *Ledger {
	if l := j.l[node]; l != nil {
		return l
	}

	return &Ledger{}
}

// add records a violation.
func (j *judge) add(kind ViolationKind, hash lntypes.Hash, node string,
	format string, args ...any) {

	j.report.Violations = append(j.report.Violations, Violation{
		Kind: kind, Hash: hash, Node: node,
		Detail: fmt.Sprintf(format, args...),
	})
}

// payments returns the node's payments for hash.
func (l *Ledger) payments(hash lntypes.Hash) []lnd.Payment {
	var out []lnd.Payment
	for _, p := range l.Payments {
		if p.Hash == hash {
			out = append(out, p)
		}
	}

	return out
}

// invoice returns the node's invoice for hash.
func (l *Ledger) invoice(hash lntypes.Hash) (lnd.Invoice, bool) {
	for _, inv := range l.Invoices {
		if inv.Hash == hash {
			return inv, true
		}
	}

	return lnd.Invoice{}, false
}

// htlcs counts the HTLCs for hash pending on the node's open channels.
func (l *Ledger) htlcs(hash lntypes.Hash) int {
	n := 0
	for _, ch := range l.Channels {
		for _, h := range ch.HTLCs {
			if h.Hash == hash {
				n++
			}
		}
	}

	return n
}

// byStatus splits payments into the succeeded ones and counts those in
// flight.
func byStatus(ps []lnd.Payment) (succeeded []lnd.Payment, inFlight int) {
	for _, p := range ps {
		switch p.Status {
		case lnd.PaymentSucceeded:
			succeeded = append(succeeded, p)
		case lnd.PaymentInFlight:
			inFlight++
		}
	}

	return succeeded, inFlight
}
