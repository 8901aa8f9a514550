package receiverlsp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// wallet is a receiver's webhook endpoint on a local HTTP server. It checks
// every webhook as a wallet would (client.Validator: signature, freshness,
// replay), and answers with the statuses queued in fail before answering
// 200. It keeps what each accepted webhook carried.
type wallet struct {
	e   *env
	srv *httptest.Server
	val *client.Validator

	mu       sync.Mutex
	got      []client.Notification
	raw      []webhookSeen
	attempts int
	fail     []int
	bad      []string
}

// webhookSeen is one accepted webhook as it came.
type webhookSeen struct {
	header http.Header
	body   []byte
}

func newWallet(e *env) *wallet {
	w := &wallet{e: e, val: client.NewValidator(e.lsp)}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := w.val.Validate(req.Header, body, e.clock.Now())
		w.mu.Lock()
		defer w.mu.Unlock()
		w.attempts++
		if err != nil {
			w.bad = append(w.bad, err.Error())
			rw.WriteHeader(http.StatusBadRequest)
			return
		}
		if len(w.fail) > 0 {
			status := w.fail[0]
			w.fail = w.fail[1:]
			rw.WriteHeader(status)
			return
		}
		w.got = append(w.got, *n)
		w.raw = append(w.raw, webhookSeen{req.Header.Clone(), body})
	}))
	e.t.Cleanup(w.srv.Close)
	return w
}

func (w *wallet) url() string { return w.srv.URL + "/hook" }

// methods returns the methods received so far, in order.
func (w *wallet) methods() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) > 0 {
		w.e.t.Fatalf("webhooks that do not verify: %v", w.bad)
	}
	var ms []string
	for _, n := range w.got {
		ms = append(ms, n.Method)
	}
	return ms
}

func (w *wallet) count(method string) int {
	n := 0
	for _, m := range w.methods() {
		if m == method {
			n++
		}
	}
	return n
}

// last returns the last notification of the method.
func (w *wallet) last(method string) client.Notification {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.got) - 1; i >= 0; i-- {
		if w.got[i].Method == method {
			return w.got[i]
		}
	}
	w.e.t.Fatalf("no %s received", method)
	return client.Notification{}
}

func (w *wallet) tries() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts
}

// A held payment wakes the receiver with a signed payment_incoming, after
// the webhook_registered its new webhook is owed; more within the cooldown
// are coalesced into one more after it.
func TestPaymentIncomingWakesTheReceiver(t *testing.T) {
	e := newEnv(t)
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0) // over the low threshold: no invoices_low
	e.run()
	e.hold(0, rc)
	testkit.Eventually(t, 5*time.Second, "payment_incoming", func() bool {
		return w.count(client.MethodPaymentIncoming) == 1
	})
	if ms := w.methods(); ms[0] != client.MethodWebhookRegistered {
		t.Fatalf("first webhook %v, want webhook_registered", ms)
	}
	n := w.last(client.MethodPaymentIncoming)
	if n.JSONRPC != "2.0" || string(n.Params) != "{}" {
		t.Fatalf("notification %+v", n)
	}
	e.hold(0, rc)
	e.hold(1, rc)
	// Within the cooldown: nothing yet.
	e.settle()
	if c := w.count(client.MethodPaymentIncoming); c != 1 {
		t.Fatalf("%d webhooks within the cooldown", c)
	}
	e.advance(61 * time.Second)
	testkit.Eventually(t, 5*time.Second, "the coalesced payment_incoming", func() bool {
		return w.count(client.MethodPaymentIncoming) == 2
	})
	// Everything is woken: no more.
	testkit.Eventually(t, 5*time.Second, "all woken", func() bool {
		wakes, _ := e.store.WakesOwed(e.ctx)
		return len(wakes) == 0
	})
}

// A failing webhook is retried with doubling backoff on the role's clock,
// and given up at once on a permanent failure.
func TestWebhookRetries(t *testing.T) {
	e := newEnv(t)
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0) // over the low threshold: no invoices_low
	e.run()
	testkit.Eventually(t, 5*time.Second, "webhook_registered", func() bool {
		return w.count(client.MethodWebhookRegistered) == 1
	})
	w.mu.Lock()
	w.fail, w.attempts = []int{http.StatusServiceUnavailable, http.StatusInternalServerError}, 0
	w.mu.Unlock()
	e.hold(0, rc)
	testkit.Eventually(t, 5*time.Second, "the first attempt", func() bool { return w.tries() == 1 })
	// The retries wait 2s, then 4s.
	testkit.Eventually(t, 5*time.Second, "the second attempt", func() bool {
		e.advance(time.Second)
		return w.tries() == 2
	})
	testkit.Eventually(t, 5*time.Second, "the delivery", func() bool {
		e.advance(time.Second)
		return w.count(client.MethodPaymentIncoming) == 1
	})

	// A 404 is not worth retrying: one attempt, then given up.
	w.mu.Lock()
	w.fail, w.attempts = []int{http.StatusNotFound}, 0
	w.mu.Unlock()
	e.advance(2 * time.Minute) // past the cooldown
	e.hold(1, rc)
	testkit.Eventually(t, 5*time.Second, "given up", func() bool {
		wakes, _ := e.store.WakesOwed(e.ctx)
		return w.tries() == 1 && len(wakes) == 0
	})
	if w.count(client.MethodPaymentIncoming) != 1 {
		t.Fatal("a refused webhook counted as delivered")
	}
}

// A pending item near its deadline is asynclsp.hold_expiring, not
// lsps5.expiry_soon: no HTLC on a channel with the receiver is involved.
func TestHoldExpiringWebhook(t *testing.T) {
	e := newEnv(t)
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0) // over the low threshold: no invoices_low
	e.run()
	m := e.hold(0, rc) // deadline: 6h, height 1100
	testkit.Eventually(t, 5*time.Second, "payment_incoming", func() bool {
		return w.count(client.MethodPaymentIncoming) == 1
	})
	e.advance(5*time.Hour + time.Minute) // within an hour of the deadline
	testkit.Eventually(t, 5*time.Second, "hold_expiring", func() bool {
		return w.count(client.MethodHoldExpiring) == 1
	})
	var p client.HoldExpiringParams
	params := w.last(client.MethodHoldExpiring).Params
	if err := json.Unmarshal(params, &p); err != nil || p.Count != 1 ||
		p.DeadlineHeight != m.DeadlineHeight || !p.DeadlineTime.Equal(m.DeadlineTime) {
		t.Fatalf("params %s: %+v, %v", params, p, err)
	}
	// By height: 12 blocks before the deadline height.
	m2 := e.hold(1, rc)
	e.height.Set(m2.DeadlineHeight - 12)
	e.advance(2 * time.Minute) // past the cooldown, and a sweep
	testkit.Eventually(t, 5*time.Second, "hold_expiring by height", func() bool {
		e.advance(time.Second)
		return w.count(client.MethodHoldExpiring) == 2
	})
	if c := w.count(client.MethodExpirySoon); c != 0 {
		t.Fatalf("%d lsps5.expiry_soon sent", c)
	}
}

func TestInvoicesLowWebhook(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Options.LowThreshold = 3 })
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 4, 0)
	e.run()
	e.reserve(0, rc, 10_000)
	e.reserve(0, rc, 10_000) // 2 left: under 3
	testkit.Eventually(t, 5*time.Second, "invoices_low", func() bool {
		return w.count(client.MethodInvoicesLow) == 1
	})
	var p client.InvoicesLowParams
	params := w.last(client.MethodInvoicesLow).Params
	if err := json.Unmarshal(params, &p); err != nil ||
		p != (client.InvoicesLowParams{Available: 2, Threshold: 3}) {
		t.Fatalf("params %s", params)
	}
	// Once told, not again until the stock recovers.
	e.reserve(0, rc, 10_000)
	e.advance(2 * time.Minute)
	e.settle()
	if c := w.count(client.MethodInvoicesLow); c != 1 {
		t.Fatalf("%d invoices_low", c)
	}
	e.stock(rc, 5, 0) // 6 available
	for range 4 {
		e.reserve(0, rc, 10_000)
	}
	testkit.Eventually(t, 5*time.Second, "invoices_low again", func() bool {
		e.advance(time.Second)
		return w.count(client.MethodInvoicesLow) == 2
	})
}

// capture is a webhook endpoint that keeps the requests it gets and answers
// status.
type capture struct {
	srv    *httptest.Server
	status int
	reqs   chan capturedReq
}

type capturedReq struct {
	header http.Header
	body   []byte
}

func newCapture(t *testing.T, status int) *capture {
	c := &capture{status: status, reqs: make(chan capturedReq, 16)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		c.reqs <- capturedReq{req.Header.Clone(), b}
		rw.WriteHeader(c.status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func TestVerifyWebhookRefusesForgeries(t *testing.T) {
	e := newEnv(t)
	c := newCapture(t, http.StatusOK)
	if err := e.role.post(e.ctx, c.srv.URL, notice{method: noticePaymentIncoming}); err != nil {
		t.Fatal(err)
	}
	req := <-c.reqs
	b := req.body
	now := e.clock.Now()
	if _, err := client.VerifyWebhook(e.lsp, req.header, b, now); err != nil {
		t.Fatalf("genuine webhook: %v", err)
	}
	_, stranger := testkit.Key(77)
	tampered := strings.Replace(string(b), "payment_incoming", "onion_message_incoming", 1)
	for name, check := range map[string]func() error{
		"another LSP": func() error { _, err := client.VerifyWebhook(stranger, req.header, b, now); return err },
		"tampered body": func() error {
			_, err := client.VerifyWebhook(e.lsp, req.header, []byte(tampered), now)
			return err
		},
		"stale": func() error {
			_, err := client.VerifyWebhook(e.lsp, req.header, b, now.Add(11*time.Minute))
			return err
		},
		"no signature": func() error {
			h := req.header.Clone()
			h.Del("x-lsps5-signature")
			_, err := client.VerifyWebhook(e.lsp, h, b, now)
			return err
		},
		"another timestamp": func() error {
			h := req.header.Clone()
			h.Set("x-lsps5-timestamp", now.Add(time.Second).UTC().Format(client.WebhookTimeFormat))
			_, err := client.VerifyWebhook(e.lsp, h, b, now)
			return err
		},
	} {
		if err := check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Plain http to anywhere but loopback is never sent.
	if err := e.role.post(e.ctx, "http://wallet.example/hook", notice{method: noticePaymentIncoming}); err == nil {
		t.Fatal("posted over plain http to a remote host")
	}
}
