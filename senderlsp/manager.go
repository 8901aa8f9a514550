// Package senderlsp is the sender LSP role: it holds a sender's HTLC on a hold
// invoice carrying the receiver's payment hash, and pays the receiver only
// once the receiver's signed release arrives; otherwise it cancels the hold
// well before any expiry, with the most specific reason.
//
// Every hold has one runner goroutine that owns it from creation (or
// recovery) until lnd has done what its final state asks. Everything that
// changes a hold goes through its runner, and every change is committed to
// the holdstore before its effect (an lnd call, a message, an answer).
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
	"github.com/lightningnetwork/lnd/clock"
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

	mu      sync.Mutex
	runners map[holdstore.ID]*runner
	ctx     context.Context // the runners' context, set by Run
	wg      sync.WaitGroup
	running chan struct{} // closed once Run has recovered every hold
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
		log:      d.Logger.With("component", "senderlsp"),
		metrics:  d.Metrics,
		channels: newChannelView(d.Lnd.ListChannels, d.Clock, cfg.CapacityRefresh),
		runners:  map[holdstore.ID]*runner{},
		running:  make(chan struct{}),
	}, nil
}

// Running is closed once Run has resumed every unresolved hold.
func (m *Manager) Running() <-chan struct{} { return m.running }

// Run resumes every unresolved hold, then watches blocks and the clock for
// deadlines until ctx ends. It returns once every runner has stopped.
func (m *Manager) Run(ctx context.Context) error {
	height, err := m.lnd.CurrentHeight(ctx)
	if err != nil {
		return fmt.Errorf("senderlsp: block height: %w", err)
	}
	m.height.Store(height)

	m.mu.Lock()
	m.ctx = ctx
	m.mu.Unlock()
	defer m.wg.Wait()

	holds, err := m.store.Unresolved(ctx)
	if err != nil {
		return fmt.Errorf("senderlsp: recovery: %w", err)
	}
	for _, h := range holds {
		m.startRunner(h, nil)
	}
	m.log.Info("sender role running", "resumed_holds", len(holds),
		"height", height)
	close(m.running)

	blocks := make(chan uint32)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.followBlocks(ctx, blocks)
	}()
	ticker := m.clock.TickAfter(m.cfg.DeadlineInterval)
	for {
		select {
		case <-ctx.Done():
			return nil
		case h := <-blocks:
			m.height.Store(h)
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

// checkDeadlines pokes the runner of every hold whose deadline has come;
// the runner decides what the deadline means for its state.
func (m *Manager) checkDeadlines(ctx context.Context) {
	due, err := m.store.Due(ctx, m.height.Load(), m.clock.Now())
	if err != nil {
		m.log.Error("deadline query failed", "err", err)
		return
	}
	for _, h := range due {
		if r := m.runner(h.ID); r != nil {
			r.poke()
		}
	}
}

// startRunner starts the runner that owns h. pay, when set, is the outbound
// payment just sent for it.
func (m *Manager) startRunner(h *holdstore.Hold, onStart func(*runner)) *runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.runners[h.ID]; ok {
		return r
	}
	if m.ctx == nil || m.ctx.Err() != nil {
		return nil
	}
	r := newRunner(m, h)
	m.runners[h.ID] = r
	if onStart != nil {
		onStart(r)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.run(m.ctx)
		m.mu.Lock()
		delete(m.runners, h.ID)
		m.mu.Unlock()
	}()
	return r
}

func (m *Manager) runner(id holdstore.ID) *runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runners[id]
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
