package scenarios

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"
)

// FaultKind is one kind of strike of the soak's fault injector.
type FaultKind string

// The kinds of fault.
const (
	// FaultKillBob and FaultKillCarol: kill -9 of the asynclspd, then a
	// restart on the same data dir.
	FaultKillBob   FaultKind = "kill_bob"
	FaultKillCarol FaultKind = "kill_carol"

	// FaultFreezeBob and FaultFreezeCarol: SIGSTOP of the asynclspd for a
	// few seconds, then SIGCONT.
	FaultFreezeBob   FaultKind = "freeze_bob"
	FaultFreezeCarol FaultKind = "freeze_carol"

	// FaultLndBob and FaultLndCarol: a restart of the LSP's lnd under its
	// running asynclspd.
	FaultLndBob   FaultKind = "lnd_bob"
	FaultLndCarol FaultKind = "lnd_carol"

	// FaultNATSNode: one node of the NATS cluster lost, then back.
	FaultNATSNode FaultKind = "nats_node"

	// FaultMine: a burst of blocks, pushing the holds toward their
	// deadlines.
	FaultMine FaultKind = "mine"
)

// FaultKinds are every kind, in the order the report lists them.
var FaultKinds = []FaultKind{FaultKillBob, FaultKillCarol, FaultFreezeBob,
	FaultFreezeCarol, FaultLndBob, FaultLndCarol, FaultNATSNode, FaultMine}

// PayKind is what the wallets do with one payment of the soak.
type PayKind string

// The kinds of payment.
const (
	// PayNow: dave releases it as soon as his mailbox lists it.
	PayNow PayKind = "release_now"

	// PayLate: dave releases it a pause after that.
	PayLate PayKind = "release_late"

	// PayNever: dave never releases it; bob cancels it at its deadline,
	// reached by mining.
	PayNever PayKind = "never_released"

	// PayExpiring: dave's invoice for it (a fixed amount, made just
	// before the create) expires before any release; bob cancels it.
	PayExpiring PayKind = "invoice_expiring"

	// PayMPP: alice pays the hold invoice in several parts; released at
	// once.
	PayMPP PayKind = "mpp"
)

// PayKinds are every kind, in the order the report lists them.
var PayKinds = []PayKind{PayNow, PayLate, PayNever, PayExpiring, PayMPP}

// want is the fate the ledgers must show for the kind.
func (k PayKind) want() Fate {
	switch k {
	case PayNever, PayExpiring:
		return FateCanceled
	}

	return FateSettled
}

// released reports whether dave releases payments of the kind.
func (k PayKind) released() bool { return k.want() == FateSettled }

// SoakFault is one planned strike.
type SoakFault struct {
	Kind FaultKind

	// At is when it strikes, from the start of the stream.
	At time.Duration

	// For is how long what it took down stays down (or frozen).
	For time.Duration

	// Node is the NATS node lost (FaultNATSNode), from 0.
	Node int

	// Blocks is the burst's size (FaultMine), at most: it stops short of
	// the deadline of a hold that is to be released.
	Blocks int
}

func (f SoakFault) String() string {
	s := fmt.Sprintf("%s at +%s", f.Kind, f.At)
	switch f.Kind {
	case FaultMine:
		return s + fmt.Sprintf(", %d blocks", f.Blocks)
	case FaultNATSNode:
		s += fmt.Sprintf(", node %d", f.Node+1)
	}

	return s + fmt.Sprintf(", for %s", f.For)
}

// SoakPayment is one planned payment.
type SoakPayment struct {
	Kind PayKind

	// At is when it is created, from the start of the stream.
	At time.Duration

	// Amount is what dave gets.
	Amount lnwire.MilliSatoshi

	// Sender is which of the wallets at bob creates it.
	Sender int

	// Pause is how long dave waits before a late release.
	Pause time.Duration

	// Shard is the largest part alice pays (PayMPP), else 0.
	Shard lnwire.MilliSatoshi
}

// SoakPlan is a whole soak's schedule, a function of the seed and the
// sizes alone: the same faults in the same order at the same offsets, the
// same payments.
type SoakPlan struct {
	Seed     uint64
	Faults   []SoakFault
	Payments []SoakPayment

	// Span is how long the stream and the injector run.
	Span time.Duration

	// Skip are the kinds of fault left out.
	Skip []FaultKind
}

// Replay is the command that draws this plan again.
func (p SoakPlan) Replay() string {
	s := fmt.Sprintf("make soak SEED=%d FAULTS=%d PAYMENTS=%d", p.Seed,
		len(p.Faults), len(p.Payments))
	if len(p.Skip) > 0 {
		names := make([]string, len(p.Skip))
		for i, k := range p.Skip {
			names[i] = string(k)
		}
		s += fmt.Sprintf(` SOAK_FLAGS="-skip %s"`, strings.Join(names, ","))
	}
	return s
}

// soakStream tells the soak's random stream from any other drawn from the
// same seed.
const soakStream = 0x736f616b // "soak"

// Amounts of the soak's payments, in sat: small enough for thousands over
// the network's channels, MPP ones large enough to split.
const (
	soakMinSat = 1_000
	soakMaxSat = 4_000
	soakMPPMin = 20_000
	soakMPPMax = 40_000
)

// NewSoakPlan draws the plan of a soak of faults strikes, one every
// `every` on average, and payments spread over the same span, from seed.
// Every kind of fault but those in skip strikes at least once when there
// are enough faults. Without skip, the plan of a seed is what it always
// was.
func NewSoakPlan(seed uint64, faults, payments, senders int,
	every time.Duration, skip ...FaultKind) SoakPlan {

	rng := rand.New(rand.NewPCG(seed, soakStream))
	ms := func(lo, hi time.Duration) time.Duration {
		// Rounded to the millisecond, for the log.
		n := int64((hi - lo) / time.Millisecond)
		return lo + time.Duration(rng.Int64N(max(1, n)))*time.Millisecond
	}
	p := SoakPlan{Seed: seed, Span: time.Duration(max(faults, 1)) * every,
		Skip: skip}

	drawn := FaultKinds
	if len(skip) > 0 {
		drawn = nil
		for _, k := range FaultKinds {
			if !slices.Contains(skip, k) {
				drawn = append(drawn, k)
			}
		}
	}
	kinds := make([]FaultKind, faults)
	for i := range kinds {
		if i < len(drawn) {
			kinds[i] = drawn[i]
			continue
		}
		kinds[i] = drawn[rng.IntN(len(drawn))]
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for i, k := range kinds {
		f := SoakFault{Kind: k, At: time.Duration(i)*every + ms(0, every)}
		switch k {
		case FaultKillBob, FaultKillCarol:
			f.For = ms(0, 2*time.Second)
		case FaultFreezeBob, FaultFreezeCarol:
			f.For = ms(time.Second, 6*time.Second)
		case FaultLndBob, FaultLndCarol:
			f.For = ms(0, 3*time.Second)
		case FaultNATSNode:
			f.Node = rng.IntN(3)
			f.For = ms(2*time.Second, 10*time.Second)
		case FaultMine:
			f.Blocks = 5 + rng.IntN(26)
		}
		p.Faults = append(p.Faults, f)
	}

	gap := p.Span / time.Duration(max(payments, 1))
	for i := range payments {
		sp := SoakPayment{At: time.Duration(i)*gap + ms(0, gap),
			Sender: rng.IntN(max(senders, 1)),
			Amount: lnwire.MilliSatoshi(soakMinSat+rng.IntN(soakMaxSat-soakMinSat)) * 1000}
		switch r := rng.IntN(100); {
		case r < 35:
			sp.Kind = PayNow
		case r < 60:
			sp.Kind = PayLate
			sp.Pause = ms(time.Second, 8*time.Second)
		case r < 75:
			sp.Kind = PayNever
		case r < 85:
			sp.Kind = PayExpiring
		default:
			sp.Kind = PayMPP
			sp.Amount = lnwire.MilliSatoshi(soakMPPMin+rng.IntN(soakMPPMax-soakMPPMin)) * 1000
			sp.Shard = sp.Amount/3 + 1_000
		}
		if sp.Kind == PayExpiring {
			// A fixed amount of its own, so that carol hands out
			// the short-lived invoice made for it and no other.
			sp.Amount += lnwire.MilliSatoshi(i%1000 + 1)
		}
		p.Payments = append(p.Payments, sp)
	}

	return p
}

// FaultCounts counts the plan's faults by kind.
func (p SoakPlan) FaultCounts() map[FaultKind]int {
	out := map[FaultKind]int{}
	for _, f := range p.Faults {
		out[f.Kind]++
	}

	return out
}

// PaymentCounts counts the plan's payments by kind.
func (p SoakPlan) PaymentCounts() map[PayKind]int {
	out := map[PayKind]int{}
	for _, sp := range p.Payments {
		out[sp.Kind]++
	}

	return out
}

// Summary says in a few lines what the plan holds.
func (p SoakPlan) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d faults and %d payments over %s\n  faults:",
		p.Seed, len(p.Faults), len(p.Payments), p.Span)
	fc := p.FaultCounts()
	for _, k := range FaultKinds {
		fmt.Fprintf(&b, " %s %d", k, fc[k])
	}
	b.WriteString("\n  payments:")
	pc := p.PaymentCounts()
	for _, k := range PayKinds {
		fmt.Fprintf(&b, " %s %d", k, pc[k])
	}

	return b.String()
}

// ParseFaultKinds reads a comma-separated list of fault kinds.
func ParseFaultKinds(list string) ([]FaultKind, error) {
	var out []FaultKind
	for _, name := range strings.Split(list, ",") {
		k := FaultKind(strings.TrimSpace(name))
		if k == "" {
			continue
		}
		if !slices.Contains(FaultKinds, k) {
			return nil, fmt.Errorf("no fault kind %q (kinds: %v)", k, FaultKinds)
		}
		out = append(out, k)
	}
	if len(out) == len(FaultKinds) {
		return nil, errors.New("every kind of fault left out")
	}
	return out, nil
}
