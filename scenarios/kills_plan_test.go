package scenarios

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// The environment variables of TestRandomKills: a seed replays a run's
// schedule, the sizes make a longer run by hand.
const (
	killsSeedEnv     = "ASYNCLSP_KILLS_SEED"
	killsPaymentsEnv = "ASYNCLSP_KILLS_PAYMENTS"
	killsKillsEnv    = "ASYNCLSP_KILLS_KILLS"
)

// The sizes of TestRandomKills in make test: a few minutes with -race on
// two cores.
const (
	defaultKillsPayments = 24
	defaultKills         = 8

	// killsInFlight is how many payments are under way at once.
	killsInFlight = 4
)

// fate is what the wallets do with one payment once bob holds it.
type fate int

const (
	// fateRelease: dave releases it as soon as his mailbox lists it.
	fateRelease fate = iota

	// fateReleaseLater: dave releases it a pause after that.
	fateReleaseLater

	// fateCancel: alice's wallet cancels it a pause after dave's
	// mailbox lists it.
	fateCancel

	// fateCancelEarly: alice's wallet cancels it the moment bob holds
	// it; carol may not have heard of it yet.
	fateCancelEarly

	// fateRace: dave posts a release and alice's wallet cancels at the
	// same moment; either may win.
	fateRace
)

func (f fate) String() string {
	return [...]string{"release", "release-later", "cancel", "cancel-early",
		"race"}[f]
}

// want is the fate the ledgers must show; empty for either.
func (f fate) want() Fate {
	switch f {
	case fateRelease, fateReleaseLater:
		return FateSettled
	case fateCancel, fateCancelEarly:
		return FateCanceled
	}

	return ""
}

// state is the state bob must end the payment in; empty for either.
func (f fate) state() senderclient.State {
	switch f.want() {
	case FateSettled:
		return senderclient.StateSettled
	case FateCanceled:
		return senderclient.StateCanceled
	}

	return ""
}

// plannedPayment is one payment of the stream.
type plannedPayment struct {
	amount lnwire.MilliSatoshi
	fate   fate

	// pause is how long the wallet waits, once dave's mailbox lists the
	// payment, before it releases or cancels.
	pause time.Duration
}

// fault is one strike of the fault injector.
type fault struct {
	// after: it strikes once this many payments have started, wait
	// later.
	after int
	wait  time.Duration

	// kill names the daemons SIGKILLed, in order, gap apart: both are
	// down at once when there are two.
	kill []string
	gap  time.Duration

	// down is how long the daemons stay dead; restart is the order in
	// which they come back.
	down    time.Duration
	restart []string
}

func (f fault) String() string {
	s := fmt.Sprintf("after %d +%v kill %s", f.after, f.wait,
		strings.Join(f.kill, "+"))
	if len(f.kill) > 1 {
		s += fmt.Sprintf(" (gap %v)", f.gap)
	}
	s += fmt.Sprintf(", down %v", f.down)
	if len(f.restart) > 1 {
		s += ", restart " + strings.Join(f.restart, " then ")
	}

	return s
}

// killsPlan is a whole run of TestRandomKills, a function of its seed:
// every payment's amount and fate, and every fault. Only the timing is
// real, so a replay strikes at about, not exactly, the same moments.
type killsPlan struct {
	payments []plannedPayment
	faults   []fault
}

// killsStream tells this plan's random stream from any other drawn from
// the same seed.
const killsStream = 0x6b696c6c73 // "kills"

// newKillsPlan draws a plan of nPay payments and nKill kills from seed: at
// least two kills of each daemon (with four or more), spread over the
// stream, one in four taking the other daemon down too.
func newKillsPlan(seed uint64, nPay, nKill int) killsPlan {
	rng := rand.New(rand.NewPCG(seed, killsStream))
	dur := func(d time.Duration) time.Duration {
		// Rounded to the millisecond, for the log.
		return time.Duration(rng.Int64N(int64(d/time.Millisecond))) *
			time.Millisecond
	}
	var p killsPlan
	for range nPay {
		pp := plannedPayment{
			amount: lnwire.MilliSatoshi(10_000+rng.IntN(20_000)) * 1000,
		}
		switch r := rng.IntN(100); {
		case r < 30:
			pp.fate = fateRelease
		case r < 55:
			pp.fate = fateReleaseLater
			pp.pause = 200*time.Millisecond + dur(2800*time.Millisecond)
		case r < 75:
			pp.fate = fateCancel
			pp.pause = dur(2 * time.Second)
		case r < 85:
			pp.fate = fateCancelEarly
		default:
			pp.fate = fateRace
		}
		p.payments = append(p.payments, pp)
	}

	victims := make([]string, nKill)
	for i := range victims {
		switch {
		case i < 4 || nKill < 4:
			victims[i] = []string{regtest.Bob, regtest.Carol}[i%2]
		default:
			victims[i] = []string{regtest.Bob, regtest.Carol}[rng.IntN(2)]
		}
	}
	rng.Shuffle(len(victims), func(i, j int) {
		victims[i], victims[j] = victims[j], victims[i]
	})
	for i := 0; i < len(victims); i++ {
		f := fault{kill: []string{victims[i]}}
		if i+1 < len(victims) && victims[i+1] != victims[i] &&
			rng.IntN(4) == 0 {

			i++
			f.kill = append(f.kill, victims[i])
			f.gap = dur(500 * time.Millisecond)
		}
		f.wait = dur(1500 * time.Millisecond)
		f.down = dur(1500 * time.Millisecond)
		f.restart = append([]string(nil), f.kill...)
		rng.Shuffle(len(f.restart), func(i, j int) {
			f.restart[i], f.restart[j] = f.restart[j], f.restart[i]
		})
		p.faults = append(p.faults, f)
	}
	// Spread over the stream: the k-th of n strikes somewhere in the
	// k-th n-th of it.
	span := max(1, nPay/max(1, len(p.faults)))
	for k := range p.faults {
		p.faults[k].after = min(nPay-1, k*nPay/len(p.faults)+rng.IntN(span))
	}

	return p
}

func (p killsPlan) String() string {
	var b strings.Builder
	fates := map[fate]int{}
	for _, pp := range p.payments {
		fates[pp.fate]++
	}
	fmt.Fprintf(&b, "%d payments (", len(p.payments))
	for f := fateRelease; f <= fateRace; f++ {
		if f > fateRelease {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", f, fates[f])
	}
	fmt.Fprintf(&b, "), %d faults:", len(p.faults))
	for _, f := range p.faults {
		fmt.Fprintf(&b, "\n  %s", f)
	}

	return b.String()
}

// envUint reads a number from the environment variable name, def if it is
// unset.
func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("$%s: %v", name, err)
	}

	return n
}
