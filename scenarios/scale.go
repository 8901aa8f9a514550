package scenarios

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Defaults of ScaleConfig.
const (
	// PerChannelHTLCs is how many held HTLCs one alice -> bob channel
	// carries: under lnd's 483 per direction, and half the commitment
	// signing work of a full channel.
	PerChannelHTLCs = 240

	DefaultScaleN           = 10_000
	DefaultScaleChannelSat  = 2_000_000
	DefaultScaleAmountSat   = 1_000
	DefaultScaleConcurrency = 32

	// DefaultScaleDirectMax bounds the direct payments made before the
	// fill: with the N held and those made while they are (below), they
	// must fit the route's channels (validate) at the default N.
	DefaultScaleDirectMax = 1_500

	// DefaultScaleHeldDirectMax bounds the direct payments made while N
	// are held.
	DefaultScaleHeldDirectMax = 500

	// scaleRouteSat sizes bob -> carol and carol -> dave: room for
	// 10,000 held payments of 1,000 sat plus the direct baseline.
	scaleRouteSat = 16_000_000

	// scalePeerRate is nats.peerrate on both daemons: the default, 200
	// messages a second from one peer LSP, would pace the run.
	scalePeerRate = 1000

	// scaleInvoiceSpare is how many more invoices carol may keep for dave
	// than the run uses.
	scaleInvoiceSpare = 64
)

// DefaultScaleCheckpoints are the numbers held at which a scale run
// measures (those below N, and N itself).
var DefaultScaleCheckpoints = []int{100, 1_000, 2_500, 5_000, 10_000}

// ErrScale: a scale run saw something go wrong (a payment not held, not
// settled, or a ledger violation).
var ErrScale = errors.New("scale run failed")

// ScaleConfig shapes a scale run. The zero value of each field but N is
// its default.
type ScaleConfig struct {
	// N is how many payments bob holds at once.
	N int

	// Channels is how many private alice -> bob channels carry the held
	// HTLCs, round robin; default ceil(N / PerChannelHTLCs).
	Channels int

	// ChannelSat is the size of each of those channels.
	ChannelSat int64

	// AmountSat is what each payment pays dave.
	AmountSat int64

	// Concurrency is how many creates (and, later, releases and direct
	// payments) are in flight at once.
	Concurrency int

	// Direct is how many direct alice -> dave payments measure lnd's own
	// throughput over the same route; default min(N, 1500), -1 for none.
	Direct int

	// HeldDirect is how many direct payments measure lnd's throughput
	// over the same route while the N are held, the channels as loaded
	// as the releases find them; default min(Direct, 500), -1 for none.
	HeldDirect int

	// Checkpoints are the numbers held at which the run measures;
	// default DefaultScaleCheckpoints. N is always one.
	Checkpoints []int

	// Progress, if set, hears how the run goes.
	Progress func(format string, args ...any)
}

// withDefaults fills in the zero fields.
func (cfg ScaleConfig) withDefaults() ScaleConfig {
	if cfg.Channels == 0 {
		cfg.Channels = (cfg.N + PerChannelHTLCs - 1) / PerChannelHTLCs
	}
	if cfg.ChannelSat == 0 {
		cfg.ChannelSat = DefaultScaleChannelSat
	}
	if cfg.AmountSat == 0 {
		cfg.AmountSat = DefaultScaleAmountSat
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultScaleConcurrency
	}
	switch {
	case cfg.Direct == 0:
		cfg.Direct = min(cfg.N, DefaultScaleDirectMax)
	case cfg.Direct < 0:
		cfg.Direct = 0
	}
	switch {
	case cfg.HeldDirect == 0:
		cfg.HeldDirect = min(cfg.Direct, DefaultScaleHeldDirectMax)
	case cfg.HeldDirect < 0:
		cfg.HeldDirect = 0
	}
	if cfg.Checkpoints == nil {
		cfg.Checkpoints = DefaultScaleCheckpoints
	}
	var points []int
	for _, k := range cfg.Checkpoints {
		if k > 0 && k < cfg.N {
			points = append(points, k)
		}
	}
	slices.Sort(points)
	cfg.Checkpoints = append(slices.Compact(points), cfg.N)
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}

	return cfg
}

// validate checks a config after withDefaults.
func (cfg ScaleConfig) validate() error {
	switch {
	case cfg.N < 1:
		return fmt.Errorf("scale: N %d must be at least 1", cfg.N)
	case cfg.Channels < 1:
		return fmt.Errorf("scale: %d channels", cfg.Channels)
	case (cfg.N+cfg.Channels-1)/cfg.Channels > 400:
		return fmt.Errorf("scale: %d HTLCs over %d channels is more than "+
			"400 a channel (lnd takes 483 at most)", cfg.N, cfg.Channels)
	case cfg.AmountSat < 1 || cfg.Concurrency < 1:
		return fmt.Errorf("scale: amount %d sat, concurrency %d",
			cfg.AmountSat, cfg.Concurrency)
	case (cfg.N+cfg.Direct+cfg.HeldDirect)*int(cfg.AmountSat) >
		scaleRouteSat*3/4:
		return fmt.Errorf("scale: %d payments of %d sat do not fit the "+
			"%d-sat channels to dave", cfg.N+cfg.Direct+cfg.HeldDirect,
			cfg.AmountSat, scaleRouteSat)
	}

	return nil
}

// amount is what each payment pays dave.
func (cfg ScaleConfig) amount() lnwire.MilliSatoshi {
	return lnwire.MilliSatoshi(cfg.AmountSat * 1000)
}

// ScaleNetOptions are the network options of a scale run: bob -> carol
// and carol -> dave big enough for every payment (nothing pushed to dave),
// and bob accepting the alice -> bob channels as one batch. The channels
// that carry the held HTLCs are opened by Scale.
func ScaleNetOptions(cfg ScaleConfig) regtest.Options {
	cfg = cfg.withDefaults()

	return regtest.Options{
		BobCarolSat: scaleRouteSat, CarolDaveSat: scaleRouteSat,
		NoPush: true,
		LndArgs: map[string][]string{regtest.Bob: {
			"--maxpendingchannels=" + strconv.Itoa(max(10, cfg.Channels+2)),
		}},
	}
}

// ScaleCastOptions are the cast options of a scale run: carol keeps N
// invoices and N pending items of dave's from bob, both daemons take a
// peer's messages five times faster than by default, and log at info.
// Dave's wallet is the HTTP one; Scale uploads his invoices.
func ScaleCastOptions(cfg ScaleConfig) Options {
	cfg = cfg.withDefaults()
	limit := strconv.Itoa(cfg.N + scaleInvoiceSpare)
	rate := "nats.peerrate=" + strconv.Itoa(scalePeerRate)

	return Options{
		Invoices: 1,
		LogLevel: "info",
		// ops.pprof: the Go heap after a forced GC (HeapAfterGC).
		Bob: []string{rate, "ops.pprof=true"},
		Carol: []string{rate, "receiver.maxstock=" + limit,
			"receiver.maxpending=" + limit,
			"receiver.maxpendingpersender=" + limit},
	}
}

// Scale measures bob holding cfg.N payments at once on c, a cast assembled
// with ScaleCastOptions on a network started with ScaleNetOptions:
//
//  1. off the clock: cfg.Channels private alice -> bob channels in one
//     funding transaction, dave's N invoices at carol, the invoices of the
//     direct payments;
//  2. the direct baseline: alice pays dave directly over the same route,
//     cfg.Concurrency at a time;
//  3. the fill: creates through bob's API, cfg.Concurrency in flight, each
//     followed by alice paying the hold invoice over the next channel,
//     round robin; at each checkpoint, once all are HELD, what bob's
//     asynclspd and the lnd nodes use;
//  4. kill -9 of bob's asynclspd with N held: the time until it is ready,
//     and until every hold is tracked again;
//  5. direct payments again, with the N held: lnd's throughput on channels
//     as loaded as the releases find them (each adds and settles an HTLC
//     on a channel carrying its share of the N);
//  6. the releases: dave's, signed off the clock, posted to carol
//     cfg.Concurrency at a time, until alice's lnd has every payment
//     SUCCEEDED;
//  7. the ledger of every lnd: nothing lost, paid twice or stuck.
//
// It returns the figures, and an error wrapping ErrScale if a payment was
// not held, not tracked or not settled, or the ledger shows a violation;
// the report then holds what was measured until then.
func Scale(ctx context.Context, c *Cast, cfg ScaleConfig) (*ScaleReport, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if c.Dave == nil {
		return nil, errors.New("scale: needs dave's HTTP wallet, not " +
			"Options.Stock")
	}
	s := &scaleRun{c: c, cfg: cfg, r: &ScaleReport{N: cfg.N,
		Channels: cfg.Channels, Concurrency: cfg.Concurrency,
		AmountSat: cfg.AmountSat, Network: c.Net.ReadyIn}}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"setup", s.setup},
		{"direct baseline", s.direct},
		{"fill", s.fill},
		{"kill -9 and restart", s.restart},
		{"direct while held", s.heldDirect},
		{"releases", s.release},
		{"ledger", s.ledger},
	}
	for _, step := range steps {
		start := time.Now()
		cfg.Progress("%s ...", step.name)
		if err := step.run(ctx); err != nil {
			return s.r, fmt.Errorf("scale, %s: %w", step.name, err)
		}
		cfg.Progress("%s done in %s", step.name, round(time.Since(start)))
	}

	return s.r, nil
}

// scaleRun is one run of Scale.
type scaleRun struct {
	c   *Cast
	cfg ScaleConfig
	r   *ScaleReport

	// chans are the alice -> bob channels of the held HTLCs.
	chans []uint64

	// directInvoices are dave's invoices for the baseline, heldInvoices
	// for the direct payments while the N are held.
	directInvoices, heldInvoices []string

	// ids are the payments, in create order.
	ids []string

	// before are the channel balances once the baseline is done.
	before Balances
}

// round rounds d for a person.
func round(d time.Duration) time.Duration {
	switch {
	case d > time.Minute:
		return d.Round(time.Second)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	}

	return d.Round(time.Millisecond)
}
