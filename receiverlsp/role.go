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
	signer  onionmsg.Signer
	height  HeightSource
	clock   clock.Clock
	log     *slog.Logger
	macKey  []byte
	webhook *http.Client

	// poke wakes Run when webhooks may be owed; it never blocks.
	poke chan struct{}

	// changed wakes long-polling readers when a mailbox item changes.
	changed notifier

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
	switch {
	case cfg.Store == nil, cfg.Messenger == nil, cfg.Signer == nil,
		cfg.Height == nil, cfg.Network == nil:
		return nil, errors.New("receiverlsp: store, messenger, signer, " +
			"height source and network are required")
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
	if cfg.WebhookClient == nil {
		cfg.WebhookClient = &http.Client{
			Timeout: cfg.Options.Webhook.Timeout,
			// A redirect could lead a webhook anywhere, plain http
			// included: refuse them.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	return &Role{
		opts: cfg.Options, cfg: cfg, self: cfg.NodeKey, store: cfg.Store,
		msgr: cfg.Messenger, signer: cfg.Signer, height: cfg.Height,
		clock: cfg.Clock, macKey: cfg.ChallengeKey, webhook: cfg.WebhookClient,
		log:  cfg.Logger.With("component", "receiverlsp"),
		poke: make(chan struct{}, 1),
	}, nil
}

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

// notifier is a broadcast: wait returns a channel closed by the next
// broadcast.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

func vertex(k onionmsg.NodeKey) route.Vertex { return route.Vertex(k) }

func nodeKey(v route.Vertex) onionmsg.NodeKey { return onionmsg.NodeKey(v) }

// seconds truncates t to whole seconds, as the wire carries times.
func seconds(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }
