package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Webhook is one webhook the sink received.
type Webhook struct {
	At time.Time

	// Method and Params are the notification's; empty if it did not
	// verify.
	Method string
	Params json.RawMessage

	// Err says why it was refused: nil for a webhook signed by the LSP,
	// fresh, and not seen before.
	Err error
}

// WebhookSink is dave's wallet's webhook endpoint on 127.0.0.1: it
// checks each webhook with a validator written from bLIP-55 alone
// (ValidateSpecWebhook: the receiver LSP's ln_signature over the spec's
// message, the spec's timestamp), drops a signature seen before, records
// what came, and answers 200 OK, the only answer LSPS5 counts as
// delivered.
type WebhookSink struct {
	// URL is what the receiver registers.
	URL string

	lsp  onionmsg.NodeKey
	srv  *http.Server
	done chan struct{}

	mu      sync.Mutex
	got     []Webhook
	seen    map[string]bool
	changed chan struct{}
}

// StartWebhookSink listens on a free loopback port for webhooks signed by
// lsp, until Close.
func StartWebhookSink(lsp onionmsg.NodeKey) (*WebhookSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &WebhookSink{
		URL:     "http://" + ln.Addr().String() + "/hook",
		lsp:     lsp,
		done:    make(chan struct{}),
		seen:    map[string]bool{},
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", s.receive)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}

	// Serves until Close shuts the server down.
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()

	return s, nil
}

// receive checks and records one webhook.
func (s *WebhookSink) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	hook := Webhook{At: time.Now()}
	n, sig, err := ValidateSpecWebhook(s.lsp[:], r.Method, r.Header, body, hook.At)
	s.mu.Lock()
	switch {
	case err != nil:
		hook.Err = err
	case s.seen[string(sig)]:
		hook.Err = fmt.Errorf("%w: signature seen before", ErrSpecWebhook)
	default:
		s.seen[string(sig)] = true
		hook.Method, hook.Params = n.Method, n.Params
	}
	s.got = append(s.got, hook)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	if hook.Err != nil {
		http.Error(w, hook.Err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Received returns every webhook so far, in order.
func (s *WebhookSink) Received() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()

	return append([]Webhook(nil), s.got...)
}

// Wait waits for a verified webhook of method among those from index from
// on, and returns it with its index.
func (s *WebhookSink) Wait(ctx context.Context, method string,
	from int) (Webhook, int, error) {

	for {
		s.mu.Lock()
		changed := s.changed
		for i := from; i < len(s.got); i++ {
			if h := s.got[i]; h.Err == nil && h.Method == method {
				s.mu.Unlock()
				return h, i, nil
			}
		}
		s.mu.Unlock()

		select {
		case <-changed:
		case <-ctx.Done():
			return Webhook{}, 0, fmt.Errorf("waiting for webhook %s: %w",
				method, ctx.Err())
		}
	}
}

// Refused returns the webhooks that did not verify.
func (s *WebhookSink) Refused() []Webhook {
	var out []Webhook
	for _, h := range s.Received() {
		if h.Err != nil {
			out = append(out, h)
		}
	}

	return out
}

// Close stops the server and waits for it.
func (s *WebhookSink) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	<-s.done

	return err
}
