// Package senderlsp is the sender LSP role: it holds a sender's HTLC on a hold
// invoice carrying the receiver's payment hash, and pays the receiver only
// once the receiver's signed release arrives; otherwise it cancels the hold
// well before any expiry, with the most specific reason.
//
// Every hold has one runner that owns it from creation (or recovery) until
// lnd has done what its final state asks. Everything that changes a hold
// goes through its runner, and every change is committed to the holdstore
// before its effect (an lnd call, a message, an answer). A runner runs a
// goroutine only while there is something to do: a HELD hold waiting for
// its release parks, and is woken by its release, a refusal, a cancel, its
// deadline (the store's deadline indexes) or lnd failing its HTLC back (one
// HTLC event stream for the node). So thousands of held payments cost no
// goroutine and no lnd stream each.
//
// Floor: roles. Owns the holds' runners, the release check and the sender API;
// it imports the ground floor only, never receiverlsp or cmd/.
package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
)

// Manager owns the live holds of the sender role.
type Manager struct {
	cfg     Config
	store   *holdstore.Store
	lnd     Lnd
	net     Messenger
	clock   clock.Clock
	log     *slog.Logger
	metrics *Metrics

	// height is the best block height lnd has told us about.
	height atomic.Uint32

	// refusals are the refused releases told to receiver LSPs lately.
	refusals refusals

	// channels is lnd's channels as create's capacity check reads them.
	channels *channelView

	mu sync.Mutex
	// holds are the unresolved holds, parked or with a runner.
	holds map[holdstore.ID]*tracked
	// circuits names the hold of each incoming HTLC lnd holds for one.
	circuits       map[lnd.CircuitKey]holdstore.ID
	failedCircuits circuitRing
	// untracked counts the holds recovered HELD that lnd has not yet
	// confirmed; reconciled is set once a reconcile has run.
	untracked  int
	reconciled bool
	trackedCh  chan struct{}
	startedAt  time.Time
	// lingering are the incoming HTLCs of ended payments that lnd still
	// had on a channel at the last linger check.
	lingering map[lntypes.Hash]lingering

	ctx     context.Context // the runners' context, set by Run
	wg      sync.WaitGroup
	running chan struct{} // closed once Run has indexed every hold

	announceKick  chan struct{}
	reconcileKick chan struct{}
	// forwarding holds a token per outbound payment in flight
	// (Config.MaxForwarding).
	forwarding chan struct{}
	// invoiceStreams holds a token per CREATED hold following its invoice
	// on a stream (Config.MaxInvoiceStreams).
	invoiceStreams chan struct{}
	// lndSlots bounds the lnd calls of woken holds asking about their
	// invoice (a reconcile may wake many).
	lndSlots chan struct{}
}

// Deps are the Manager's collaborators.
type Deps struct {
	Store   *holdstore.Store
	Lnd     Lnd
	Net     Messenger
	Clock   clock.Clock
	Logger  *slog.Logger
	Metrics *Metrics
}

// New returns a Manager; Run starts it.
func New(cfg Config, d Deps) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sender config: %w", err)
	}
	if d.Store == nil || d.Lnd == nil || d.Net == nil {
		return nil, errors.New("senderlsp: store, lnd and messenger are required")
	}
	if d.Clock == nil {
		d.Clock = clock.NewDefaultClock()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil, d.Store)
	}
	return &Manager{
		cfg: cfg, store: d.Store, lnd: d.Lnd, net: d.Net, clock: d.Clock,
		log:            d.Logger.With("component", "senderlsp"),
		metrics:        d.Metrics,
		channels:       newChannelView(d.Lnd.ListChannels, d.Clock, cfg.CapacityRefresh),
		holds:          map[holdstore.ID]*tracked{},
		circuits:       map[lnd.CircuitKey]holdstore.ID{},
		trackedCh:      make(chan struct{}),
		running:        make(chan struct{}),
		announceKick:   make(chan struct{}, 1),
		reconcileKick:  make(chan struct{}, 1),
		lndSlots:       make(chan struct{}, lndRecheckSlots),
		invoiceStreams: make(chan struct{}, cfg.MaxInvoiceStreams),
		forwarding:     make(chan struct{}, cfg.MaxForwarding),
	}, nil
}

// lndRecheckSlots bounds the LookupInvoice calls of woken holds at once.
const lndRecheckSlots = 32

// Running is closed once Run has indexed every unresolved hold: creates,
// releases, refusals and cancels are taken from then on. A release for a
// hold lnd has not yet confirmed is safe: the runner asks lnd before any
// payout.
func (m *Manager) Running() <-chan struct{} { return m.running }

// Tracked is closed once every hold recovered at start is tracked again:
// its runner runs, or lnd has confirmed that it still holds its HTLCs (the
// first reconcile with lnd's pending invoices).
func (m *Manager) Tracked() <-chan struct{} { return m.trackedCh }

// Run recovers the unresolved holds, then watches blocks and the clock for
// deadlines, and lnd's HTLC events, until ctx ends. It returns once every
// goroutine it started has stopped.
//
// Recovery costs no burst on lnd: a HELD hold (almost all of them) is only
// indexed, and confirmed by the reconcile that follows the HTLC event
// subscription, a thousand holds per lnd call; the others get their runner.
// Only announcements no receiver LSP acknowledged are sent again.
func (m *Manager) Run(ctx context.Context) error {
	m.startedAt = m.clock.Now()
	height, err := m.lnd.CurrentHeight(ctx)
	if err != nil {
		return fmt.Errorf("senderlsp: block height: %w", err)
	}
	m.height.Store(height)
	m.metrics.chainHeight(height)

	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	defer m.wg.Wait()

	holds, err := m.store.Unresolved(ctx)
	if err != nil {
		return fmt.Errorf("senderlsp: recovery: %w", err)
	}
	parked := 0
	m.mu.Lock()
	for _, h := range holds {
		t := m.trackLocked(h)
		if h.State == holdstore.StateHeld {
			t.unconfirmed = true
			m.untracked++
			parked++
			continue
		}
		m.startLocked(t, nil)
	}
	m.metrics.untracked(m.untracked)
	m.mu.Unlock()
	m.log.Info("sender role running", "resumed_holds", len(holds),
		"parked", parked, "height", height)
	close(m.running)

	blocks := make(chan uint32)
	m.goOwned(func() { m.followBlocks(ctx, blocks) })
	m.goOwned(func() { m.watchHTLCs(ctx) })
	m.goOwned(func() { m.reconcileLoop(ctx) })
	m.goOwned(func() { m.announceLoop(ctx) })
	m.goOwned(func() { m.lingerLoop(ctx) })
	m.checkDeadlines(ctx)
	ticker := m.clock.TickAfter(m.cfg.DeadlineInterval)
	for {
		select {
		case <-ctx.Done():
			return nil
		case h := <-blocks:
			m.height.Store(h)
			m.metrics.chainHeight(h)
			m.checkDeadlines(ctx)
		case <-ticker:
			ticker = m.clock.TickAfter(m.cfg.DeadlineInterval)
			m.checkDeadlines(ctx)
		}
	}
}

// followBlocks forwards new block heights until ctx ends, subscribing again
// after a subscription ends with an error.
func (m *Manager) followBlocks(ctx context.Context, out chan<- uint32) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		sub, err := m.lnd.SubscribeBlocks(ctx)
		if err == nil {
			attempt = 0
			for h := range sub.Updates() {
				select {
				case out <- h:
				case <-ctx.Done():
				}
			}
			err = sub.Err()
			sub.Close()
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("block subscription ended, subscribing again", "err", err)
		if !sleep(ctx, m.clock, backoff(attempt)) {
			return
		}
	}
}

// checkDeadlines pokes every hold whose deadline has come, waking it if
// parked; its runner decides what the deadline means for its state. The
// store's deadline indexes find them: the cost is the holds due, not the
// holds held.
func (m *Manager) checkDeadlines(ctx context.Context) {
	due, err := m.store.Due(ctx, m.height.Load(), m.clock.Now())
	if err != nil {
		m.log.Error("deadline query failed", "err", err)
		return
	}
	for _, h := range due {
		m.poke(h.ID)
	}
}

// goOwned runs f in a goroutine that Run waits for.
func (m *Manager) goOwned(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// backoff is the wait before retrying an lnd call that failed: 1s doubling
// up to a minute.
func backoff(attempt int) time.Duration {
	d := time.Second << min(attempt, 6)
	return min(d, time.Minute)
}

// sleep waits d on clk, or until ctx ends (false).
func sleep(ctx context.Context, clk clock.Clock, d time.Duration) bool {
	select {
	case <-clk.TickAfter(d):
		return true
	case <-ctx.Done():
		return false
	}
}
