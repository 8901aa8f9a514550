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
// every webhook's signature as a wallet would, and answers with the
// statuses queued in fail before answering 200.
type wallet struct {
	e   *env
	srv *httptest.Server

	mu       sync.Mutex
	got      []client.Notification
	attempts int
	fail     []int
	bad      []string
}

func newWallet(e *env) *wallet {
	w := &wallet{e: e}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		n, err := client.VerifyWebhook(e.lsp, req.Header, body, e.clock.Now())
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

// A held payment wakes the receiver with a signed payment_incoming; more
// within the cooldown are coalesced into one more after it.
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
	w.fail = []int{http.StatusServiceUnavailable, http.StatusInternalServerError}
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0) // over the low threshold: no invoices_low
	e.run()
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

func TestExpirySoonWebhook(t *testing.T) {
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
	testkit.Eventually(t, 5*time.Second, "expiry_soon", func() bool {
		return w.count(client.MethodExpirySoon) == 1
	})
	var p client.ExpirySoonParams
	params := w.last(client.MethodExpirySoon).Params
	if err := json.Unmarshal(params, &p); err != nil || p.Timeout != m.DeadlineHeight {
		t.Fatalf("params %s: %+v, %v", params, p, err)
	}
	// By height: 12 blocks before the deadline height.
	m2 := e.hold(1, rc)
	e.height.Set(m2.DeadlineHeight - 12)
	e.advance(2 * time.Minute) // past the cooldown, and a sweep
	testkit.Eventually(t, 5*time.Second, "expiry_soon by height", func() bool {
		e.advance(time.Second)
		return w.count(client.MethodExpirySoon) == 2
	})
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

func TestVerifyWebhookRefusesForgeries(t *testing.T) {
	e := newEnv(t)
	body := notification(client.MethodPaymentIncoming, nil)
	rec := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(strings.NewReader(string(b)))
		rec <- req
	}))
	defer srv.Close()
	if err := e.role.post(e.ctx, srv.URL, body); err != nil {
		t.Fatal(err)
	}
	req := <-rec
	b, _ := io.ReadAll(req.Body)
	now := e.clock.Now()
	if _, err := client.VerifyWebhook(e.lsp, req.Header, b, now); err != nil {
		t.Fatalf("genuine webhook: %v", err)
	}
	_, stranger := testkit.Key(77)
	tampered := strings.Replace(string(b), "payment_incoming", "expiry_soon", 1)
	for name, check := range map[string]func() error{
		"another LSP": func() error { _, err := client.VerifyWebhook(stranger, req.Header, b, now); return err },
		"tampered body": func() error {
			_, err := client.VerifyWebhook(e.lsp, req.Header, []byte(tampered), now)
			return err
		},
		"stale": func() error {
			_, err := client.VerifyWebhook(e.lsp, req.Header, b, now.Add(11*time.Minute))
			return err
		},
		"no signature": func() error {
			h := req.Header.Clone()
			h.Del("x-lsps5-signature")
			_, err := client.VerifyWebhook(e.lsp, h, b, now)
			return err
		},
	} {
		if err := check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Plain http to anywhere but loopback is never sent.
	if err := e.role.post(e.ctx, "http://wallet.example/hook", body); err == nil {
		t.Fatal("posted over plain http to a remote host")
	}
}
