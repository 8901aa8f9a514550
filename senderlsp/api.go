package senderlsp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
)

// TokenAuthenticator checks the bearer tokens of API callers;
// *holdstore.Store implements it.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (*holdstore.Token, error)
}

// APIConfig tunes the HTTP API. The zero value is what a daemon wants.
type APIConfig struct {
	// Tokens authenticates callers. Default: the Manager's store.
	Tokens TokenAuthenticator

	// MaxBodyBytes caps a request body; a larger one is refused with
	// 413. Default 16 KiB.
	MaxBodyBytes int64

	// CreateTimeout bounds a payment's creation (the receiver LSP's
	// answer, then lnd's hold invoice), which goes on when the client
	// leaves. Default 1 minute.
	CreateTimeout time.Duration

	// Heartbeat is how often an idle event stream gets a comment line,
	// so proxies and clients see it is alive. Default 15s.
	Heartbeat time.Duration

	// EventBatch caps how many events a stream reads from the store at
	// once. Default 500.
	EventBatch int

	// StreamWriteTimeout bounds each write to an event stream: a client
	// that stops reading is dropped. It replaces the server's
	// WriteTimeout, which would cut every stream. Default 30s.
	StreamWriteTimeout time.Duration

	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

func (c *APIConfig) defaults(m *Manager) {
	if c.Tokens == nil {
		c.Tokens = m.store
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 16 << 10
	}
	if c.CreateTimeout <= 0 {
		c.CreateTimeout = time.Minute
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.EventBatch <= 0 {
		c.EventBatch = 500
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// API is the sender LSP's HTTP JSON API for wallet backends and the
// operator: payments under /v1/payments and an event stream at /v1/events,
// as openapi.json documents. Serve it with an http.Server whose
// RegisterOnShutdown calls Close, so that event streams end with the server.
type API struct {
	m   *Manager
	cfg APIConfig
	log *slog.Logger
	mux *http.ServeMux

	// creating serializes creates that share an idempotency key.
	creating keyedMutex
	// outages logs when a receiver LSP stops answering creates, and when
	// it answers again.
	outages *lspOutages

	mu      sync.Mutex
	closed  bool
	quit    chan struct{}
	streams sync.WaitGroup
	active  atomic.Int64 // event streams open
}

// APIHandler returns the HTTP API of the sender role.
func (m *Manager) APIHandler(cfg APIConfig) *API {
	cfg.defaults(m)
	a := &API{
		m: m, cfg: cfg,
		log:  cfg.Logger.With("component", "senderapi"),
		mux:  http.NewServeMux(),
		quit: make(chan struct{}),
	}
	a.outages = newLSPOutages(m.clock, a.log)
	allowed := map[string][]string{}
	for _, rt := range apiRoutes {
		a.mux.Handle(rt.method+" "+rt.pattern, a.authed(rt.handle))
		allowed[rt.pattern] = append(allowed[rt.pattern], rt.method)
	}
	// Every other method on a known path, and every unknown path, gets a
	// JSON error like the rest of the API.
	for pattern, methods := range allowed {
		allow := strings.Join(methods, ", ")
		a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, errMethodNotAllowed)
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiErr(codeNotFound, "no such endpoint"))
	})
	return a
}

// apiRoute is one endpoint. openapi.json documents exactly these; a test
// holds the two together.
type apiRoute struct {
	method, pattern string
	handle          func(*API, http.ResponseWriter, *http.Request, *caller)
}

var apiRoutes = []apiRoute{
	{http.MethodPost, "/v1/payments", (*API).createPayment},
	{http.MethodGet, "/v1/payments", (*API).listPayments},
	{http.MethodGet, "/v1/payments/{id}", (*API).getPayment},
	{http.MethodPost, "/v1/payments/{id}/cancel", (*API).cancelPayment},
	{http.MethodGet, "/v1/events", (*API).events},
}

// ServeHTTP serves the API.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// Close ends every event stream and refuses new requests with 503; it
// returns once the streams' handlers have returned.
func (a *API) Close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.quit)
	}
	a.mu.Unlock()
	a.streams.Wait()
}

// stream registers an event stream Close waits for; false once closed.
func (a *API) stream() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.streams.Add(1)
	a.active.Add(1)
	return true
}

// streamDone ends what stream began.
func (a *API) streamDone() {
	a.active.Add(-1)
	a.streams.Done()
}

func (a *API) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// caller is who made a request, as their token says.
type caller struct {
	tokenID string
	name    string
	role    holdstore.TokenRole
}

func (c *caller) admin() bool { return c.role == holdstore.RoleAdmin }

// sees reports whether the caller may see the payment: an admin sees all,
// a wallet its own.
func (c *caller) sees(h *holdstore.Hold) bool {
	return c.admin() || h.Owner == c.name
}

// cancelReason is what a cancel by the caller is recorded as.
func (c *caller) cancelReason() holdstore.Reason {
	if c.admin() {
		return holdstore.ReasonCanceledByOperator
	}
	return holdstore.ReasonCanceledBySender
}

// authed wraps a handler with bearer-token authentication.
func (a *API) authed(h func(*API, http.ResponseWriter, *http.Request, *caller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.isClosed() {
			writeError(w, errShuttingDown)
			return
		}
		c, err := a.authenticate(r)
		if err != nil {
			if publicError(err).Code == codeUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="asynclsp"`)
			}
			a.fail(w, r, err, "")
			return
		}
		h(a, w, r, c)
	})
}

func (a *API) authenticate(r *http.Request) (*caller, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, apiErr(codeUnauthorized, "a bearer token is required")
	}
	tok, err := a.cfg.Tokens.AuthenticateToken(r.Context(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, holdstore.ErrTokenInvalid), errors.Is(err, holdstore.ErrTokenRevoked):
		a.log.Info("API token refused", "remote", r.RemoteAddr, "err", err)
		return nil, apiErr(codeUnauthorized, "the bearer token is invalid or revoked")
	case err != nil:
		return nil, err
	}
	return &caller{tokenID: tok.ID, name: tok.Name, role: tok.Role}, nil
}

// keyedMutex is a set of locks by key that a waiter can give up on.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	token chan struct{} // holds one value while unlocked
	users int
}

// lock takes the lock of key, or fails when ctx ends first; unlock gives it
// back.
func (k *keyedMutex) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &keyLock{token: make(chan struct{}, 1)}
		l.token <- struct{}{}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()

	release := func() {
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case <-l.token:
		return func() { l.token <- struct{}{}; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
