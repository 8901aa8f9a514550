package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// These tests run the client against scripted servers, to check what it
// sends and how it reads edge cases the real API never produces. The
// end-to-end tests against the real API are in package senderlsp.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestClient(t *testing.T, url string, tune ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{URL: url, Token: "0123456789abcdef.secret", Logger: quiet(),
		ReconnectWait: time.Millisecond}
	for _, f := range tune {
		f(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewChecksConfig(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "", Token: "t"},
		{URL: "ftp://x", Token: "t"},
		{URL: "http://", Token: "t"},
		{URL: "http://lsp", Token: ""},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestCreatePaymentRequest(t *testing.T) {
	var (
		got    map[string]any
		header http.Header
		path   string
		status = http.StatusCreated
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header, path = r.Header, r.Method+" "+r.URL.Path
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
		w.Write([]byte(`{"id":"ab","state":"CREATED","amount_msat":5000,"created_at":"2026-11-21T12:00:00Z"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/base/")

	p, created, err := c.CreatePayment(context.Background(), CreatePaymentRequest{
		ReceiverKey: "02aa", ReceiverLSP: "03bb", AmountMsat: 5000,
		MaxHold: 90*time.Minute + 500*time.Millisecond, RetryPolicy: "fast-fail",
		IdempotencyKey: "order-7",
	})
	if err != nil || !created || p.ID != "ab" || p.State != StateCreated || p.AmountMsat != 5000 ||
		!p.CreatedAt.Equal(time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("created %v, %+v, %v", created, p, err)
	}
	want := map[string]any{"receiver_key": "02aa", "receiver_lsp": "03bb",
		"amount_msat": 5000.0, "max_hold_seconds": 5400.0, "retry_policy": "fast-fail"}
	if path != "POST /base/v1/payments" || len(got) != len(want) ||
		header.Get("Idempotency-Key") != "order-7" ||
		header.Get("Authorization") != "Bearer 0123456789abcdef.secret" ||
		header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s, body %v, header %v", path, got, header)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("body %v, want %v", got, want)
		}
	}

	status = http.StatusOK
	if _, created, err := c.CreatePayment(context.Background(), CreatePaymentRequest{}); err != nil || created {
		t.Fatalf("a 200 answer: created %v, %v", created, err)
	}
}

func TestErrors(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	for _, tc := range []struct {
		status    int
		body      string
		code      Code
		temporary bool
	}{
		{404, `{"error":{"code":"not_found","message":"no such payment"}}`, CodeNotFound, false},
		{409, `{"error":{"code":"not_cancelable","message":"in flight"}}`, CodeNotCancelable, false},
		{503, `{"error":{"code":"no_htlc_slots","message":"later"}}`, CodeNoHTLCSlots, true},
		{502, `<html>Bad Gateway</html>`, "", true},
		{500, ``, "", true},
	} {
		status, body = tc.status, tc.body
		_, err := c.Payment(context.Background(), "ab")
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.Status != tc.status || apiErr.Code != tc.code ||
			apiErr.Temporary() != tc.temporary || apiErr.Message == "" {
			t.Errorf("%d %q: %#v", tc.status, tc.body, err)
			continue
		}
		if tc.code != "" && (!errors.Is(err, tc.code) || errors.Is(err, CodeInternal)) {
			t.Errorf("%d: errors.Is by code fails: %v", tc.status, err)
		}
	}
}

// The client's codes are the document's.
func TestCodesMatchOpenAPI(t *testing.T) {
	b, err := os.ReadFile("../openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	codes := []string{}
	for _, c := range []Code{CodeInvalidRequest, CodeUnauthorized, CodeForbidden,
		CodeNotFound, CodeMethodNotAllowed, CodeNotCancelable, CodeRequestTooLarge,
		CodeReceiverUnknown, CodeNoInvoice, CodeAmountOutOfRange, CodeBadInvoice,
		CodeInternal, CodeInsufficientLiquidity, CodeNoHTLCSlots,
		CodeReceiverLSPUnreachable, CodeUnavailable} {
		codes = append(codes, string(c))
	}
	inDoc := slices.Clone(doc.Components.Schemas["ErrorCode"].Enum)
	slices.Sort(inDoc)
	slices.Sort(codes)
	if !slices.Equal(inDoc, codes) {
		t.Fatalf("openapi.json codes %v, client %v", inDoc, codes)
	}
}

// scriptedStream serves one scripted answer per connection of an event
// stream and records the position each connection asked for.
type scriptedStream struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	asked   []string
}

func (s *scriptedStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.asked = append(s.asked, r.Header.Get("Last-Event-ID")+"/"+r.URL.Query().Get("after"))
	n := len(s.asked)
	s.mu.Unlock()
	if n > len(s.answers) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"revoked"}}`)
		return
	}
	s.answers[n-1](w)
}

func (s *scriptedStream) positions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func sse(body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, body)
	}
}

func event(seq uint64, final bool) string {
	b, _ := json.Marshal(Event{Seq: seq, PaymentID: "p", State: StateHeld, Final: final})
	return string(b)
}

// The stream reader: comments, position-only messages, CRLF lines, data
// split over lines, other event types; it resumes after the last id seen
// (an event's or a position's) and stops on a refusal.
func TestEventsResumeAndParse(t *testing.T) {
	s := &scriptedStream{answers: []func(http.ResponseWriter){
		sse("retry: 2000\nid: 7\n\n: heartbeat\n\nid: 8\nevent: transition\ndata: " +
			event(8, false) + "\n\n" + "id: 9\r\nevent: transition\r\ndata: " +
			event(9, false) + "\r\n\r\n" + "id: 10\nevent: transition\ndata: " + event(10, true)[:12]),
		sse("id: 10\nevent: transition\ndata: {\"seq\":10,\ndata: \"payment_id\":\"p\",\"final\":true}\n\n" +
			"id: 11\nevent: other\ndata: {}\n\n: heartbeat\nid: 15\n\n"),
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
		sse("data: " + event(16, false) + "\n\n"),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newTestClient(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var seqs []uint64
	var final []bool
	var last error
	for ev, err := range c.Events(ctx, 6) {
		if err != nil {
			last = err
			break
		}
		seqs = append(seqs, ev.Seq)
		final = append(final, ev.Final)
	}
	if !slices.Equal(seqs, []uint64{8, 9, 10, 16}) || !slices.Equal(final, []bool{false, false, true, false}) {
		t.Fatalf("events %v, final %v", seqs, final)
	}
	// The cut message (10) was never seen; the second connection resumes
	// after 9, the third after position 15 (past an event of another
	// type), the fourth too after a 503, the fifth after 16.
	want := []string{"6/6", "9/9", "15/15", "15/15", "16/16"}
	if got := s.positions(); !slices.Equal(got, want) {
		t.Fatalf("positions asked %v, want %v", got, want)
	}
	if !errors.Is(last, CodeUnauthorized) {
		t.Fatalf("stream ended with %v", last)
	}
}

// Reconnects wait on the injected clock, doubling while they fail.
func TestEventsReconnectWaits(t *testing.T) {
	s := &scriptedStream{}
	for range 3 {
		s.answers = append(s.answers, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
		})
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ticks := make(chan time.Duration)
	clk := clock.NewTestClockWithTickSignal(time.Unix(0, 0), ticks)
	c := newTestClient(t, srv.URL, func(cfg *Config) {
		cfg.Clock, cfg.ReconnectWait, cfg.MaxReconnectWait = clk, time.Second, 3*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		for _, err := range c.Events(ctx, 0) {
			done <- err
			return
		}
	}()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		var wait time.Duration
		select {
		case wait = <-ticks:
		case <-ctx.Done():
			t.Fatalf("no wait %d", i)
		}
		if wait != want || len(s.positions()) != i+1 {
			t.Fatalf("wait %d: %v after %d connections, want %v", i, wait, len(s.positions()), want)
		}
		clk.SetTime(clk.Now().Add(wait))
	}
	if err := <-done; !errors.Is(err, CodeUnauthorized) {
		t.Fatalf("ended with %v", err)
	}
}
