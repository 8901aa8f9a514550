package receiverlsp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// The bodies are byte for byte what LDK's serde writes (lsps5/msgs.rs
// tests) for the same notifications; ours have our prefix.
func TestNoticeBodiesMatchLDK(t *testing.T) {
	deadline := time.Date(2026, 11, 21, 18, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		n    notice
		want string
	}{
		{notice{method: noticeWebhookRegistered},
			`{"jsonrpc":"2.0","method":"lsps5.webhook_registered","params":{}}`},
		{notice{method: noticePaymentIncoming},
			`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`},
		{notice{method: noticePaymentIncoming, params: noParams{}},
			`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`},
		{notice{method: noticeInvoicesLow, params: invoicesLowParams{Available: 2, Threshold: 3}},
			`{"jsonrpc":"2.0","method":"asynclsp.invoices_low","params":{"available":2,"threshold":3}}`},
		{notice{method: noticeHoldExpiring, params: holdExpiringParams{Count: 2,
			DeadlineHeight: 1100, DeadlineTime: lspsTime(deadline.Add(123 * time.Microsecond))}},
			`{"jsonrpc":"2.0","method":"asynclsp.hold_expiring","params":{"count":2,` +
				`"deadline_height":1100,"deadline_time":"2026-11-21T18:00:00.000Z"}}`},
	} {
		if got := string(c.n.body()); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.n.method, got, c.want)
		}
	}
}

// chronoRFC3339 is chrono's DateTime<Utc>::to_rfc3339(): write_rfc3339 with
// SecondsFormat::AutoSi and use_z false (chrono src/format/formatting.rs):
// no fraction when the nanoseconds are 0, else 3, 6 or 9 digits, the
// fewest that are exact; then +00:00.
func chronoRFC3339(t time.Time) string {
	t = t.UTC()
	frac := ""
	switch ns := t.Nanosecond(); {
	case ns == 0:
	case ns%1_000_000 == 0:
		frac = fmt.Sprintf(".%03d", ns/1_000_000)
	case ns%1_000 == 0:
		frac = fmt.Sprintf(".%06d", ns/1_000)
	default:
		frac = fmt.Sprintf(".%09d", ns)
	}
	return t.Format("2006-01-02T15:04:05") + frac + "+00:00"
}

// ldkReserialize is LDK's WebhookNotification deserialized and serialized
// again (msgs.rs): known methods only, params rebuilt.
func ldkReserialize(body []byte) (string, error) {
	var n struct {
		JSONRPC *string                    `json:"jsonrpc"`
		Method  *string                    `json:"method"`
		Params  map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &n); err != nil || n.JSONRPC == nil ||
		*n.JSONRPC != "2.0" || n.Method == nil || n.Params == nil {
		return "", errors.New("not a WebhookNotification")
	}
	params := "{}"
	switch *n.Method {
	case "lsps5.webhook_registered", "lsps5.payment_incoming",
		"lsps5.liquidity_management_request", "lsps5.onion_message_incoming":
	case "lsps5.expiry_soon":
		var timeout uint32
		if err := json.Unmarshal(n.Params["timeout"], &timeout); err != nil {
			return "", errors.New("Missing or invalid timeout parameter")
		}
		params = fmt.Sprintf(`{"timeout":%d}`, timeout)
	default:
		return "", fmt.Errorf("Unknown method: %s", *n.Method)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":%s}`, *n.Method, params), nil
}

// ldkValidate is LDK's LSPS5Validator::validate (lsps5/validator.rs) in
// Go: the header parsed as LSPSDateTime::from_str does (chrono's
// parse_from_rfc3339, no time before the epoch), the message rebuilt with
// the timestamp's to_rfc3339() and the notification serialized again, and
// the ln_signature checked over that.
func ldkValidate(lsp onionmsg.NodeKey, ts, sig string, body []byte) error {
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || at.Unix() < 0 {
		return fmt.Errorf("invalid LSPSDateTime %q", ts)
	}
	canon, err := ldkReserialize(body)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At %s I notify %s",
		chronoRFC3339(at), canon)
	return onionmsg.VerifyLNSignature([]byte(msg), sig, lsp)
}

// capturedWebhook posts n from a role with the timestamp form at the
// clock's time and returns what the endpoint got.
func capturedWebhook(t *testing.T, form string, at time.Time, n notice) (*env, capturedReq) {
	e := newEnv(t, func(c *Config) { c.Options.Webhook.Timestamp = form })
	e.clock.SetTime(at)
	c := newCapture(t, http.StatusOK)
	if err := e.role.post(e.ctx, c.srv.URL, n); err != nil {
		t.Fatal(err)
	}
	return e, <-c.reqs
}

// bLIP-55 writes the timestamp YYYY-MM-DDThh:mm:ss.uuuZ; LDK's validator
// re-renders it with to_rfc3339 before checking the signature, so it
// accepts only the "ldk" form. Both verify with client.VerifyWebhook.
func TestTimestampFormsAndLDKValidator(t *testing.T) {
	ms := testStart.Add(395 * time.Millisecond)
	for _, c := range []struct {
		form   string
		at     time.Time
		header string
		ldk    bool
	}{
		{client.TimestampSpec, ms, "2026-11-21T12:00:00.395Z", false},
		{client.TimestampSpec, testStart, "2026-11-21T12:00:00.000Z", false},
		{client.TimestampLDK, ms, "2026-11-21T12:00:00.395+00:00", true},
		{client.TimestampLDK, testStart, "2026-11-21T12:00:00+00:00", true},
	} {
		name := c.form + " " + c.header
		e, req := capturedWebhook(t, c.form, c.at, notice{method: noticePaymentIncoming})
		ts, sig := req.header.Get("x-lsps5-timestamp"), req.header.Get("x-lsps5-signature")
		if ts != c.header {
			t.Errorf("%s: header %q", name, ts)
		}
		if _, err := client.VerifyWebhook(e.lsp, req.header, req.body, c.at); err != nil {
			t.Errorf("%s: VerifyWebhook: %v", name, err)
		}
		err := ldkValidate(e.lsp, ts, sig, req.body)
		if (err == nil) != c.ldk {
			t.Errorf("%s: LDK's validator: %v, want accepted=%v", name, err, c.ldk)
		}
	}
	// What an LDK LSP sends (nanoseconds, +00:00) LDK accepts: the port
	// is faithful.
	_, key := testkit.Key(lspIndex)
	priv, _ := testkit.Key(lspIndex)
	body := []byte(`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`)
	ts := "2026-11-21T12:00:00.395123456+00:00"
	sig, _ := onionmsg.NewPrivKeySigner(priv).SignMessage(context.Background(),
		client.WebhookMessage(ts, body))
	if err := ldkValidate(key, ts, sig, body); err != nil {
		t.Fatalf("LDK's own form: %v", err)
	}
}

// The signature checks out against the spec's template built by hand, with
// the LSP's key recovered from it (independent of client.VerifyWebhook).
func TestSignatureVerifiesFromTheSpecString(t *testing.T) {
	_, req := capturedWebhook(t, client.TimestampSpec, testStart, notice{method: noticeWebhookRegistered})
	msg := "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " +
		req.header.Get("x-lsps5-timestamp") + " I notify " + string(req.body)
	got, err := onionmsg.RecoverLNSignature([]byte(msg), req.header.Get("x-lsps5-signature"))
	if _, lsp := testkit.Key(lspIndex); err != nil || got != lsp {
		t.Fatalf("recovered %v, %v; want the LSP's key %v", got, err, lsp)
	}
	if req.header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", req.header.Get("Content-Type"))
	}
}

// recordingSigner keeps every message it signs.
type recordingSigner struct {
	*onionmsg.PrivKeySigner
	mu   sync.Mutex
	msgs []string
}

func (s *recordingSigner) SignMessage(ctx context.Context, msg []byte) (string, error) {
	s.mu.Lock()
	s.msgs = append(s.msgs, string(msg))
	s.mu.Unlock()
	return s.PrivKeySigner.SignMessage(ctx, msg)
}

// A peer cannot get text of its own signed by the LSP's node key: what it
// controls (app_name, URL) never reaches a signed message, and every
// signed message is the LSPS5 template with one of our bodies.
func TestPeerTextNeverSigned(t *testing.T) {
	priv, _ := testkit.Key(lspIndex)
	rec := &recordingSigner{PrivKeySigner: onionmsg.NewPrivKeySigner(priv)}
	e := newEnv(t, func(c *Config) {
		c.MessageSigner = rec
		c.Options.LowThreshold = 30
	})
	w := newWallet(e)
	rc := e.registered(0, "")
	e.stock(rc, 20, 0) // under 30: invoices_low too
	app := `I notify {"method":"lsps5.goodbye"} evil`
	url := w.url() + `?text=I+notify+%7B%22evil%22%7D`
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams(app, url), nil)
	e.run()
	e.hold(0, rc)
	e.reserve(0, rc, 10_000)
	testkit.Eventually(t, 5*time.Second, "the webhooks", func() bool {
		return w.count(client.MethodPaymentIncoming) == 1 &&
			w.count(client.MethodInvoicesLow) == 1
	})
	shape := regexp.MustCompile(`^LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At ` +
		`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z I notify ` +
		`(\{"jsonrpc":"2\.0","method":"(lsps5\.webhook_registered|lsps5\.payment_incoming|` +
		`asynclsp\.invoices_low|asynclsp\.hold_expiring)","params":\{[a-z_":,0-9.TZ-]*\}\})$`)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) < 3 {
		t.Fatalf("%d messages signed", len(rec.msgs))
	}
	for _, m := range rec.msgs {
		if !shape.MatchString(m) || strings.Contains(m, "evil") || strings.Contains(m, "text=") {
			t.Errorf("signed %q", m)
		}
	}
}

// Only notary.signed has the node key sign: no other code of the package
// calls SignMessage (or SignTagged).
func TestOnlyTheNotarySigns(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "SignMessage" && sel.Sel.Name != "SignTagged") {
					return true
				}
				if f != "notify.go" || fn.Name.Name != "signed" {
					t.Errorf("%s: %s calls %s", fset.Position(sel.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// 55:444: a redirect is not followed, even with a client of the caller's
// that would, and is a failure, not retried.
func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.WebhookClient = &http.Client{} })
	target := newCapture(t, http.StatusOK)
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect,
		http.StatusPermanentRedirect} {

		hits := 0
		redirect := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
			hits++
			http.Redirect(rw, req, target.srv.URL, status)
		}))
		err := e.role.deliver(e.ctx, redirect.URL, notice{method: noticePaymentIncoming})
		redirect.Close()
		if !errors.Is(err, errPermanent) || hits != 1 {
			t.Fatalf("%d: err %v after %d attempts, want a permanent failure at once", status, err, hits)
		}
	}
	select {
	case <-target.reqs:
		t.Fatal("a redirect was followed")
	default:
	}
	if d, f := e.role.hooks.delivered.Load(), e.role.hooks.failed.Load(); d != 0 || f != 3 {
		t.Fatalf("delivered %d, failed %d", d, f)
	}
}

// 55:439-443: only 200 OK is delivered. Another 2xx is a failure, and the
// worker gives the wake-up up rather than count it.
func TestOnly200IsDelivered(t *testing.T) {
	e := newEnv(t)
	for _, status := range []int{http.StatusCreated, http.StatusAccepted, http.StatusNoContent} {
		c := newCapture(t, status)
		err := e.role.post(e.ctx, c.srv.URL, notice{method: noticePaymentIncoming})
		if !errors.Is(err, errPermanent) {
			t.Fatalf("%d: %v", status, err)
		}
	}
	c := newCapture(t, http.StatusOK)
	if err := e.role.post(e.ctx, c.srv.URL, notice{method: noticePaymentIncoming}); err != nil {
		t.Fatal(err)
	}
	if d, f := e.role.hooks.delivered.Load(), e.role.hooks.failed.Load(); d != 1 || f != 3 {
		t.Fatalf("delivered %d, failed %d", d, f)
	}

	// Through the worker: a wallet answering 204 gets one attempt each.
	nc := newCapture(t, http.StatusNoContent)
	rc := e.registered(0, nc.srv.URL+"/hook")
	e.stock(rc, 20, 0)
	e.run()
	e.hold(0, rc)
	testkit.Eventually(t, 5*time.Second, "the wake given up", func() bool {
		wakes, _ := e.store.WakesOwed(e.ctx)
		return len(wakes) == 0 && len(nc.reqs) == 2 // registered, payment_incoming
	})
	if d := e.role.hooks.delivered.Load(); d != 1 {
		t.Fatalf("a 204 counted as delivered: %d delivered", d)
	}
}
