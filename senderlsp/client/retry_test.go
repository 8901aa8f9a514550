package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// flakyLSP answers each create with the next of its scripted answers, the
// last one for good, and records what each request carried.
type flakyLSP struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	keys    []string
	bodies  []string
}

func (f *flakyLSP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	f.bodies = append(f.bodies, string(body))
	answer := f.answers[min(len(f.keys), len(f.answers))-1]
	f.mu.Unlock()
	answer(w)
}

func (f *flakyLSP) requests() (keys, bodies []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...), append([]string(nil), f.bodies...)
}

func answer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

const (
	unavailable = `{"error":{"code":"unavailable","message":"starting"}}`
	unreachable = `{"error":{"code":"receiver_lsp_unreachable","message":"no answer"}}`
	createdBody = `{"id":"ab","state":"CREATED","amount_msat":5000}`
)

// newRetryClient is a client on the test clock, without keep-alive: a new
// connection per request, so that http.Transport never repeats a request
// on its own and the server counts exactly the client's attempts.
func newRetryClient(t *testing.T, url string, clk clock.Clock, tune ...func(*Config)) *Client {
	return newTestClient(t, url, append([]func(*Config){func(cfg *Config) {
		cfg.Clock, cfg.RetryWait, cfg.MaxRetryWait = clk, time.Second, 3*time.Second
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}}, tune...)...)
}

var createReq = CreatePaymentRequest{ReceiverKey: "02aa", ReceiverLSP: "03bb",
	AmountMsat: 5000, IdempotencyKey: "order-7"}

// A create answered 503 three times and once not at all is sent again
// after waits that double up to MaxRetryWait, each time with the same
// body and idempotency key, until it succeeds.
func TestCreatePaymentRetry(t *testing.T) {
	lsp := &flakyLSP{answers: []func(http.ResponseWriter){
		answer(503, unavailable), answer(503, unreachable), hangUp,
		answer(503, unavailable), answer(201, createdBody),
	}}
	srv := httptest.NewServer(lsp)
	defer srv.Close()
	ticks := make(chan time.Duration)
	clk := clock.NewTestClockWithTickSignal(time.Unix(0, 0), ticks)
	c := newRetryClient(t, srv.URL, clk)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	type result struct {
		p       *Payment
		created bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		p, created, err := c.CreatePaymentRetry(ctx, createReq)
		done <- result{p, created, err}
	}()
	for i, want := range []time.Duration{time.Second, 2 * time.Second,
		3 * time.Second, 3 * time.Second} {

		var wait time.Duration
		select {
		case wait = <-ticks:
		case <-ctx.Done():
			t.Fatalf("no wait %d", i)
		}
		if keys, _ := lsp.requests(); wait != want || len(keys) != i+1 {
			t.Fatalf("wait %d: %v after %d requests, want %v", i, wait,
				len(keys), want)
		}
		clk.SetTime(clk.Now().Add(wait))
	}
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		t.Fatal("no result")
	}
	if res.err != nil || !res.created || res.p.ID != "ab" {
		t.Fatalf("created %v, %+v, %v", res.created, res.p, res.err)
	}
	keys, bodies := lsp.requests()
	if len(keys) != 5 {
		t.Fatalf("%d requests, want 5", len(keys))
	}
	for i := range keys {
		if keys[i] != "order-7" || bodies[i] != bodies[0] {
			t.Fatalf("request %d: key %q, body %s (first %s)", i, keys[i],
				bodies[i], bodies[0])
		}
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(bodies[0]), &body); err != nil ||
		body["amount_msat"] != 5000.0 {
		t.Fatalf("body %s: %v", bodies[0], err)
	}
}

// What ends a retried create: an answer that is not temporary (at once),
// the attempts (RetryAttempts), the context, or a missing key (before any
// request).
func TestCreatePaymentRetryStops(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewTestClock(time.Unix(0, 0))

	t.Run("not temporary", func(t *testing.T) {
		lsp := &flakyLSP{answers: []func(http.ResponseWriter){
			answer(422, `{"error":{"code":"receiver_unknown","message":"who"}}`),
		}}
		srv := httptest.NewServer(lsp)
		defer srv.Close()
		_, _, err := newRetryClient(t, srv.URL, clk).CreatePaymentRetry(ctx, createReq)
		if keys, _ := lsp.requests(); !errors.Is(err, CodeReceiverUnknown) || len(keys) != 1 {
			t.Fatalf("%d requests, %v", len(keys), err)
		}
	})

	t.Run("attempts", func(t *testing.T) {
		lsp := &flakyLSP{answers: []func(http.ResponseWriter){answer(503, unavailable)}}
		srv := httptest.NewServer(lsp)
		defer srv.Close()
		// No wait at all: RetryAttempts 1 gives up before the clock
		// matters.
		c := newRetryClient(t, srv.URL, clk, func(cfg *Config) { cfg.RetryAttempts = 1 })
		_, _, err := c.CreatePaymentRetry(ctx, createReq)
		if keys, _ := lsp.requests(); !errors.Is(err, CodeUnavailable) || len(keys) != 1 ||
			!strings.Contains(err.Error(), "gave up after 1 attempts") {
			t.Fatalf("%d requests, %v", len(keys), err)
		}
	})

	t.Run("context", func(t *testing.T) {
		lsp := &flakyLSP{answers: []func(http.ResponseWriter){answer(503, unavailable)}}
		srv := httptest.NewServer(lsp)
		defer srv.Close()
		ticks := make(chan time.Duration)
		c := newRetryClient(t, srv.URL, clock.NewTestClockWithTickSignal(time.Unix(0, 0), ticks))
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, _, err := c.CreatePaymentRetry(ctx, createReq)
			done <- err
		}()
		select {
		case <-ticks: // waiting after the first attempt
		case <-ctx.Done():
			t.Fatal("no wait")
		}
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || !errors.Is(err, CodeUnavailable) {
			t.Fatalf("ended with %v", err)
		}
	})

	t.Run("no key", func(t *testing.T) {
		c := newRetryClient(t, "http://127.0.0.1:1", clk)
		req := createReq
		req.IdempotencyKey = ""
		if _, _, err := c.CreatePaymentRetry(ctx, req); !errors.Is(err, ErrNoIdempotencyKey) {
			t.Fatalf("without a key: %v", err)
		}
	})
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{Status: 503, Code: CodeUnavailable}, true},
		{&Error{Status: 502}, true},
		{&Error{Status: 429}, true},
		{&Error{Status: 409, Code: CodeNotCancelable}, false},
		{&Error{Status: 422, Code: CodeNoInvoice}, false},
		{&url.Error{Op: "Post", URL: "http://lsp/v1/payments", Err: io.ErrUnexpectedEOF}, true},
		{errors.New("sender LSP API: decoding the answer"), false},
		{context.Canceled, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v", tc.err, got)
		}
	}
}
