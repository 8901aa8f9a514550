package receiverlsp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/routing/route"
)

// Role is the receiver LSP role. New builds it; the daemon registers its
// bus handlers (Register), serves its HTTP API (Handler) and runs its
// background work (Run).
type Role struct {
	opts    Options
	cfg     Config
	self    onionmsg.NodeKey
	store   *holdstore.Store
	msgr    Messenger
	height  HeightSource
	clock   clock.Clock
	log     *slog.Logger
	macKey  []byte
	webhook *http.Client
	lsps    *lsps0.Server

	// notary signs the webhooks: nothing else has the node key sign.
	notary notary

	// hooks counts webhook deliveries by outcome.
	hooks webhookStats

	// poke wakes Run when webhooks may be owed; it never blocks.
	poke chan struct{}

	// changed wakes long-polling readers when a mailbox item changes.
	changed waiters

	// passes counts Run's passes, so a test can tell that one began
	// after an event.
	passes atomic.Uint64
}

// New checks cfg and returns a Role.
func New(cfg Config) (*Role, error) {
	if cfg.Options == (Options{}) {
		cfg.Options = DefaultOptions()
	}
	if err := cfg.Options.Validate(); err != nil {
		return nil, fmt.Errorf("receiverlsp: %w", err)
	}
	if cfg.MessageSigner == nil {
		cfg.MessageSigner, _ = cfg.Signer.(onionmsg.MessageSigner)
	}
	switch {
	case cfg.Store == nil, cfg.Messenger == nil, cfg.MessageSigner == nil,
		cfg.Height == nil, cfg.Network == nil:
		return nil, errors.New("receiverlsp: store, messenger, message " +
			"signer, height source and network are required")
	}
	if _, err := cfg.NodeKey.PubKey(); err != nil {
		return nil, fmt.Errorf("receiverlsp: own node key: %w", err)
	}
	if cfg.ChallengeKey == nil {
		cfg.ChallengeKey = make([]byte, 32)
		rand.Read(cfg.ChallengeKey)
	}
	if len(cfg.ChallengeKey) < 16 {
		return nil, errors.New("receiverlsp: challenge key under 16 bytes")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	webhook := &http.Client{Timeout: cfg.Options.Webhook.Timeout}
	if cfg.WebhookClient != nil {
		c := *cfg.WebhookClient
		webhook = &c
	}
	// 55:444: no redirect is followed. One could lead a webhook anywhere,
	// plain http included; its 3xx answer is a failure.
	webhook.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	if cfg.LSPS == nil {
		cfg.LSPS = lsps0.NewServer(cfg.Logger)
	}
	r := &Role{
		opts: cfg.Options, cfg: cfg, self: cfg.NodeKey, store: cfg.Store,
		msgr: cfg.Messenger, height: cfg.Height, clock: cfg.Clock,
		macKey: cfg.ChallengeKey, webhook: webhook, lsps: cfg.LSPS,
		log:  cfg.Logger.With("component", "receiverlsp"),
		poke: make(chan struct{}, 1),
		notary: notary{signer: cfg.MessageSigner, clock: cfg.Clock,
			form: cfg.Options.Webhook.Timestamp},
	}
	r.RegisterLSPS(r.lsps)
	return r, nil
}

// LSPS is the LSPS0 server the role's methods are registered on
// (Config.LSPS, or the one New made). The daemon feeds it lnd's custom
// messages of type 37913; POST /v1/lsps0 feeds it too.
func (r *Role) LSPS() *lsps0.Server { return r.lsps }

// Register routes the messages sender LSPs send a receiver LSP to the role:
// invoice_request, held_htlc_available and hold_outcome.
func (r *Role) Register(mux *lspnet.Mux) {
	mux.HandleRequest(onionmsg.TypeInvoiceRequest, r.handleInvoiceRequest)
	mux.HandleMessage(onionmsg.TypeHeldHTLCAvailable, r.handleHeld)
	mux.HandleMessage(onionmsg.TypeHoldOutcome, r.handleOutcome)
}

// kick wakes Run: webhooks may be owed.
func (r *Role) kick() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// itemKey names a mailbox item.
type itemKey struct {
	sender route.Vertex
	hold   holdstore.ID
}

// waiters wakes the long-polling readers of one mailbox item when it
// changes, and no others.
type waiters struct {
	mu sync.Mutex
	m  map[itemKey]*waitEntry
}

type waitEntry struct {
	ch    chan struct{}
	count int
}

// wait returns a channel closed at the item's next change, and a function
// to call when no longer waiting.
func (w *waiters) wait(k itemKey) (<-chan struct{}, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[itemKey]*waitEntry{}
	}
	e := w.m[k]
	if e == nil {
		e = &waitEntry{ch: make(chan struct{})}
		w.m[k] = e
	}
	e.count++
	return e.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if e.count--; e.count == 0 && w.m[k] == e {
			delete(w.m, k)
		}
	}
}

// notify wakes the item's waiters.
func (w *waiters) notify(sender route.Vertex, hold holdstore.ID) {
	k := itemKey{sender, hold}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.m[k]; e != nil {
		close(e.ch)
		delete(w.m, k)
	}
}

func vertex(k onionmsg.NodeKey) route.Vertex { return route.Vertex(k) }

func nodeKey(v route.Vertex) onionmsg.NodeKey { return onionmsg.NodeKey(v) }

// seconds truncates t to whole seconds, as the wire carries times.
func seconds(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }
