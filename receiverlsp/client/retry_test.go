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

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// flakyLSP answers each posted release with the next of its scripted
// answers (the last one for good) and each read of the item with item.
type flakyLSP struct {
	mu       sync.Mutex
	answers  []func(w http.ResponseWriter)
	releases []string
	reads    []string
	item     Item
}

func (f *flakyLSP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if r.Method == http.MethodGet {
		f.reads = append(f.reads, r.URL.Path)
		it := f.item
		f.mu.Unlock()
		json.NewEncoder(w).Encode(it)
		return
	}
	var req ReleaseRequest
	json.NewDecoder(r.Body).Decode(&req)
	f.releases = append(f.releases, r.Method+" "+r.URL.Path+" "+req.Release)
	answer := f.answers[min(len(f.releases), len(f.answers))-1]
	f.mu.Unlock()
	answer(w)
}

func (f *flakyLSP) seen() (releases, reads []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.releases...), append([]string(nil), f.reads...)
}

func answer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func itemAnswer(status int, it Item) func(w http.ResponseWriter) {
	b, _ := json.Marshal(it)
	return answer(status, string(b))
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

const (
	unavailable = `{"error":{"code":"unavailable","message":"bus down"}}`
	conflict    = `{"error":{"code":"conflict","message":"the item is settled"}}`
)

// retryFixture is a client of a scripted LSP on the test clock, and an item
// of its receiver's.
type retryFixture struct {
	c    *Client
	lsp  *flakyLSP
	item Item
	clk  *clock.TestClock
	tick chan time.Duration
}

func newRetryFixture(t *testing.T, answers ...func(http.ResponseWriter)) *retryFixture {
	t.Helper()
	key, me := testkit.Key(1)
	_, sender := testkit.Key(2)
	f := &retryFixture{lsp: &flakyLSP{answers: answers},
		tick: make(chan time.Duration)}
	f.item = Item{SenderLSP: sender, HoldID: onionmsg.HoldID{7}, ReceiverKey: me,
		PaymentHash: Hex32{1}, AmountMsat: 5000, ReleaseSecret: Hex32{2},
		State: StatePending, Version: 1}
	srv := httptest.NewServer(f.lsp)
	t.Cleanup(srv.Close)
	f.clk = clock.NewTestClockWithTickSignal(time.Unix(1_800_000_000, 0), f.tick)
	var err error
	f.c, err = New(Config{BaseURL: srv.URL, NodeKey: me,
		Signer: onionmsg.NewPrivKeySigner(key), Token: "t", Clock: f.clk,
		RetryWait: time.Second, MaxRetryWait: 3 * time.Second,
		// A new connection per request: http.Transport never repeats a
		// request on its own, the server counts the client's attempts.
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// release runs ReleaseRetry, letting each wait pass on the clock as it
// comes, and checks the waits were want.
func (f *retryFixture) release(t *testing.T, want ...time.Duration) (*Item, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type result struct {
		it  *Item
		err error
	}
	done := make(chan result, 1)
	go func() {
		it, err := f.c.ReleaseRetry(ctx, &f.item, 10*time.Minute)
		done <- result{it, err}
	}()
	for i := 0; ; i++ {
		select {
		case wait := <-f.tick:
			if i >= len(want) || wait != want[i] {
				t.Fatalf("wait %d is %v, want %v", i, wait, want)
			}
			f.clk.SetTime(f.clk.Now().Add(wait))
		case res := <-done:
			if i != len(want) {
				t.Fatalf("%d waits, want %v", i, want)
			}
			return res.it, res.err
		case <-ctx.Done():
			t.Fatal("no result")
		}
	}
}

// A release answered 503 twice and once not at all is posted again, the
// same release each time, after waits that double up to MaxRetryWait.
func TestReleaseRetry(t *testing.T) {
	f := newRetryFixture(t)
	released := f.item
	released.State, released.Version = StateReleased, 2
	f.lsp.answers = []func(http.ResponseWriter){answer(503, unavailable),
		answer(503, unavailable), hangUp, itemAnswer(202, released)}
	it, err := f.release(t, time.Second, 2*time.Second, 3*time.Second)
	if err != nil || it.State != StateReleased {
		t.Fatalf("%+v, %v", it, err)
	}
	posts, reads := f.lsp.seen()
	if len(posts) != 4 || len(reads) != 0 || !strings.HasPrefix(posts[0], "POST /v1/releases ") {
		t.Fatalf("posts %v, reads %v", posts, reads)
	}
	for _, p := range posts {
		if p != posts[0] {
			t.Fatalf("posted %q then %q", posts[0], p)
		}
	}
	raw := strings.TrimPrefix(posts[0], "POST /v1/releases ")
	f.lsp.mu.Lock()
	f.lsp.item = f.item
	f.lsp.mu.Unlock()
	if got, err := f.c.releasedItem(context.Background(), raw); err != nil ||
		got.State != StatePending {
		t.Fatalf("the release names no item: %v", err)
	}
}

// A conflict after a failed attempt is the item having moved on, maybe
// through that attempt: the item is read and returned if it is no longer
// pending. A conflict at the first attempt, or while the item is still
// pending, is an error.
func TestReleaseRetryConflict(t *testing.T) {
	t.Run("after a failed attempt, settled", func(t *testing.T) {
		f := newRetryFixture(t, answer(503, unavailable), answer(409, conflict))
		f.lsp.item = f.item
		f.lsp.item.State = StateSettled
		it, err := f.release(t, time.Second)
		_, reads := f.lsp.seen()
		want := "/v1/mailbox/" + f.item.SenderLSP.String() + "/" + f.item.HoldID.String()
		if err != nil || it.State != StateSettled || len(reads) != 1 || reads[0] != want {
			t.Fatalf("%+v, %v; read %v, want %s", it, err, reads, want)
		}
	})
	t.Run("after a failed attempt, still pending", func(t *testing.T) {
		f := newRetryFixture(t, answer(503, unavailable), answer(409, conflict))
		f.lsp.item = f.item
		if _, err := f.release(t, time.Second); !IsCode(err, CodeConflict) {
			t.Fatalf("ended with %v", err)
		}
	})
	t.Run("at once", func(t *testing.T) {
		f := newRetryFixture(t, answer(409, conflict))
		_, err := f.release(t)
		if _, reads := f.lsp.seen(); !IsCode(err, CodeConflict) || len(reads) != 0 {
			t.Fatalf("ended with %v after reading %v", err, reads)
		}
	})
	t.Run("not temporary", func(t *testing.T) {
		f := newRetryFixture(t, answer(400, `{"error":{"code":"invalid_request","message":"expired"}}`))
		if _, err := f.release(t); !IsCode(err, CodeInvalidRequest) {
			t.Fatalf("ended with %v", err)
		}
	})
	t.Run("attempts", func(t *testing.T) {
		f := newRetryFixture(t, answer(503, unavailable))
		f.c.cfg.RetryAttempts = 3
		_, err := f.release(t, time.Second, 2*time.Second)
		if posts, _ := f.lsp.seen(); !IsCode(err, CodeUnavailable) || len(posts) != 3 {
			t.Fatalf("%d posts, %v", len(posts), err)
		}
	})
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&APIError{Status: 503, Code: CodeUnavailable}, true},
		{&APIError{Status: 500, Code: CodeInternal}, true},
		{&APIError{Status: 429, Code: "http"}, true},
		{&APIError{Status: 409, Code: CodeConflict}, false},
		{&APIError{Status: 401, Code: CodeUnauthorized}, false},
		{&url.Error{Op: "Post", URL: "http://lsp/v1/releases", Err: io.ErrUnexpectedEOF}, true},
		{errors.New("client: not registered: call Register first"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v", tc.err, got)
		}
	}
}
