package scenarios

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// Defaults of SoakConfig.
const (
	DefaultSoakFaults   = 30
	DefaultSoakPayments = 60
	DefaultSoakSenders  = 3
	DefaultSoakEvery    = 6 * time.Second
	DefaultSoakInFlight = 12
	DefaultSoakSettle   = 3 * time.Minute

	// soakChannelSat sizes every channel: room for thousands of the
	// soak's payments, nothing pushed to dave.
	soakChannelSat = 16_000_000

	// soakHoldDelta is bob's hold CLTV delta: a hold's deadline is 160
	// blocks after it is held (400 - 40 safety - 200 outbound budget),
	// few enough to mine.
	soakHoldDelta = 400

	// soakInvoiceLife is how long dave's invoice for a PayExpiring
	// payment lasts; bob takes it if it has soakMinInvoiceLife left and
	// cancels the hold soakExpiryMargin before it expires.
	soakInvoiceLife    = 75 * time.Second
	soakMinInvoiceLife = 40 * time.Second
	soakExpiryMargin   = 20 * time.Second

	// soakMineMargin: a mining burst stops this many blocks short of the
	// deadline of a hold that is to be released.
	soakMineMargin = 10

	// soakSafetyMargin is bob's sender.safety-margin (the default): his
	// outbound payments' CLTV limit ends this many blocks before the
	// incoming HTLC expires.
	soakSafetyMargin = 40

	// soakHTLCExpiryGap: the settling never mines within this many
	// blocks of the expiry of an HTLC on alice's or bob's channels,
	// where lnd would go on chain for it (a force close).
	soakHTLCExpiryGap = 20

	// soakFaultTimeout bounds one strike, recovery included.
	soakFaultTimeout = 4 * time.Minute

	// soakPayTimeout bounds a payment's active part: create, paying (up
	// to soakPayTries tries of up to soakHeldWait), the release.
	soakPayTimeout = 10 * time.Minute
)

// ErrSoak: the soak found a violation, or something it struck did not come
// back.
var ErrSoak = errors.New("soak failed")

// SoakConfig shapes a soak. The zero value of each field but Seed is its
// default.
type SoakConfig struct {
	// Seed draws the plan (NewSoakPlan): the same seed and sizes give the
	// same schedule.
	Seed uint64

	// Faults and Payments are how many of each the plan holds.
	Faults, Payments int

	// Senders is how many wallets at bob create the payments.
	Senders int

	// Every is the mean time between two faults; the payments are spread
	// over the same span.
	Every time.Duration

	// InFlight bounds the payments being created, paid or released at
	// once (a held one waiting for its end does not count).
	InFlight int

	// Settle bounds the wait, once the last fault struck, for every
	// payment to end.
	Settle time.Duration

	// Skip are kinds of fault the plan leaves out (none: every kind).
	Skip []FaultKind

	// Progress, if set, hears everything the soak does, with its offset.
	Progress func(format string, args ...any)
}

// withDefaults fills in the zero fields.
func (cfg SoakConfig) withDefaults() SoakConfig {
	if cfg.Faults == 0 {
		cfg.Faults = DefaultSoakFaults
	}
	if cfg.Payments == 0 {
		cfg.Payments = DefaultSoakPayments
	}
	if cfg.Senders == 0 {
		cfg.Senders = DefaultSoakSenders
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultSoakEvery
	}
	if cfg.InFlight == 0 {
		cfg.InFlight = DefaultSoakInFlight
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSoakSettle
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}

	return cfg
}

// Plan is the schedule the config draws.
func (cfg SoakConfig) Plan() SoakPlan {
	cfg = cfg.withDefaults()
	return NewSoakPlan(cfg.Seed, cfg.Faults, cfg.Payments, cfg.Senders,
		cfg.Every, cfg.Skip...)
}

// invoices is how many invoices dave stocks carol with: one a payment and
// spares for creates whose answer a fault lost.
func (cfg SoakConfig) invoices() int {
	cfg = cfg.withDefaults()
	return cfg.Payments + cfg.Faults + 20
}

// SoakNetOptions are the network options of a soak: every channel big
// enough for thousands of small payments.
func SoakNetOptions() regtest.Options {
	return regtest.Options{AliceBobSat: soakChannelSat,
		BobCarolSat: soakChannelSat, CarolDaveSat: soakChannelSat,
		NoPush: true}
}

// SoakCastOptions are the cast options of a soak on the NATS cluster at
// urls: both daemons on every node, their streams replicated three times;
// bob's holds short enough to reach their deadlines by mining, his retries
// quick, his checks of time-based deadlines every second; carol keeping
// every invoice and pending item and taking invoices that last a minute.
func SoakCastOptions(cfg SoakConfig, urls []string, logLevel string) Options {
	stock := strconv.Itoa(cfg.invoices() + 1000)
	nats := []string{"nats.streamreplicas=3", "nats.ackwait=3s"}
	for _, u := range urls[1:] {
		nats = append(nats, "nats.url="+u)
	}
	secs := func(d time.Duration) string { return d.String() }

	return Options{
		NATSURL:  urls[0],
		Invoices: cfg.invoices(),
		LogLevel: logLevel,
		Bob: append([]string{
			"sender.hold-cltv-delta=" + strconv.Itoa(soakHoldDelta),
			"sender.quick-retry=200ms", "sender.quick-retry=500ms",
			"sender.slow-retry-interval=1s",
			"sender.min-invoice-life=" + secs(soakMinInvoiceLife),
			"sender.invoice-expiry-margin=" + secs(soakExpiryMargin),
			"sender.deadline-interval=1s",
			"sender.hold-invoice-expiry=5m",
		}, nats...),
		Carol: append([]string{
			"receiver.mininvoicelife=30s",
			"receiver.maxstock=" + stock,
			"receiver.maxpending=" + stock,
			"receiver.maxpendingpersender=" + stock,
		}, nats...),
	}
}

// Soak runs the plan of cfg on c, a cast assembled with SoakCastOptions on
// a network started with SoakNetOptions, its daemons on cluster: the
// payments stream in while the injector strikes, then the injector stops,
// everything is brought back and left to settle (mining past the deadlines
// of the holds never released), and the judge reads every lnd's ledger.
// The report says what happened; the error wraps ErrSoak if the ledgers
// show a violation or something struck did not come back.
func Soak(ctx context.Context, c *Cast, cluster *NATSCluster,
	cfg SoakConfig) (*SoakReport, error) {

	cfg = cfg.withDefaults()
	if c.Dave == nil {
		return nil, errors.New("soak: needs dave's HTTP wallet, not " +
			"Options.Stock")
	}
	s := &soakRun{c: c, nats: cluster, cfg: cfg, plan: cfg.Plan(),
		live: map[int]*soakLive{}}
	s.r = &SoakReport{Plan: s.plan, LndFixed: regtest.LndFixed(
		s.c.Net.BinDir(), regtest.FixForwardingPackageAckIndex)}
	cfg.Progress("%s", s.plan.Summary())
	if err := s.setup(ctx); err != nil {
		return s.r, fmt.Errorf("soak, setup: %w", err)
	}
	s.payCtx, s.payCancel = context.WithCancel(ctx)
	defer s.payCancel()
	s.t0 = time.Now()
	s.stream(ctx)
	s.r.Stream = time.Since(s.t0)
	settled := time.Now()
	s.settle(ctx)
	s.r.Settle = time.Since(settled)
	if err := s.judge(ctx); err != nil {
		return s.r, fmt.Errorf("soak, judge: %w", err)
	}
	if !s.r.OK() {
		return s.r, fmt.Errorf("%w: %s", ErrSoak, s.r.Verdict())
	}

	return s.r, nil
}

// soakRun is one run of Soak.
type soakRun struct {
	c    *Cast
	nats *NATSCluster
	cfg  SoakConfig
	plan SoakPlan
	r    *SoakReport
	t0   time.Time

	// wallets are the senders' backends at bob.
	wallets []*senderclient.Client

	// before are the balances with commitment fees when the stream
	// began.
	before Balances

	mu sync.Mutex
	// live are the payments not yet final at bob, by index: what the
	// mining bursts must not push past a deadline.
	live map[int]*soakLive
	// results are the payments' flows, by index.
	results []*soakPaid
	// pays counts the payments' flows still going; payCtx is theirs,
	// ended by payCancel once the soak has settled.
	pays      sync.WaitGroup
	payCtx    context.Context
	payCancel context.CancelFunc
	// incidents are what went wrong outside any payment: a fault that
	// did not come back, a process that exited on its own.
	incidents []string
}

// soakLive is a payment not yet final at bob.
type soakLive struct {
	release  bool   // dave is to release it
	deadline uint32 // its deadline height, once held
	expiry   uint32 // the incoming HTLC's expiry, once held
}

// progress logs with the offset from the start of the stream.
func (s *soakRun) progress(format string, args ...any) {
	at := time.Duration(0)
	if !s.t0.IsZero() {
		at = time.Since(s.t0)
	}
	s.cfg.Progress("+%-8s %s", at.Round(time.Millisecond),
		fmt.Sprintf(format, args...))
}

// incident records what went wrong outside any payment.
func (s *soakRun) incident(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.progress("INCIDENT: %s", msg)
	s.mu.Lock()
	s.incidents = append(s.incidents, msg)
	s.mu.Unlock()
}

// setup issues the senders' wallet tokens and reads the balances.
func (s *soakRun) setup(ctx context.Context) error {
	s.wallets = []*senderclient.Client{s.c.Wallet}
	for i := 1; i < s.cfg.Senders; i++ {
		w, err := s.c.Bob.SenderClient(ctx, fmt.Sprintf("%s-%d", AliceWallet, i+1))
		if err != nil {
			return err
		}
		s.wallets = append(s.wallets, w)
	}
	var err error
	s.before, err = s.c.BalancesWithFees(ctx)

	return err
}

// stream runs the payments and the injector until every fault struck and
// every payment began its flow.
func (s *soakRun) stream(ctx context.Context) {
	var injector sync.WaitGroup
	injector.Go(func() { s.inject(ctx) })

	s.results = make([]*soakPaid, len(s.plan.Payments))
	slots := make(chan struct{}, s.cfg.InFlight)
	s.pays.Add(len(s.plan.Payments))
	for i, sp := range s.plan.Payments {
		if !s.until(ctx, sp.At) || !acquire(ctx, slots) {
			s.pays.Add(i - len(s.plan.Payments))
			break
		}
		// Ends when the payment is final at bob, or ctx ends.
		go func() {
			defer s.pays.Done()
			s.pay(s.payCtx, i, func() { <-slots })
		}()
	}
	injector.Wait()
}

// acquire takes a slot; false if ctx ended first.
func acquire(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// until waits until offset at of the stream; false if ctx ended first.
func (s *soakRun) until(ctx context.Context, at time.Duration) bool {
	return pause(ctx, time.Until(s.t0.Add(at)))
}

// pause waits d, or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// mineCap is how many blocks a burst may mine now: short of the deadline
// of every hold dave is to release, by soakMineMargin.
func (s *soakRun) mineCap(height uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := math.MaxInt
	for _, l := range s.live {
		if !l.release || l.deadline == 0 {
			continue
		}
		limit = min(limit, int(l.deadline)-int(height)-soakMineMargin)
	}

	return max(0, limit)
}

// outboundEnd is the height past which the outbound payment of every live
// hold dave is to release can no longer complete: the end of its CLTV
// limit, plus one. There bob gives up a payment lnd keeps in flight with
// no HTLC left (lnd_ghost_payment); 0 if no such hold is held.
func (s *soakRun) outboundEnd() (end uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.live {
		if l.release && l.expiry > soakSafetyMargin {
			end = max(end, l.expiry-soakSafetyMargin+1)
		}
	}

	return end
}

// liveDeadlines returns the deadline heights of the live holds, and
// whether any of them is to be released.
func (s *soakRun) liveDeadlines() (top uint32, releases int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.live {
		n++
		if l.release {
			releases++
		}
		top = max(top, l.deadline)
	}

	return top, releases, n
}
