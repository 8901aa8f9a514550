package console

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/clock"
)

// recorder stands for the daemon's API: it records what the console
// forwards.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, r)
	rec.mu.Unlock()
	httpjson.Write(w, http.StatusOK, map[string]string{"path": r.URL.Path})
}

func (rec *recorder) forwarded() []*http.Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]*http.Request(nil), rec.reqs...)
}

type env struct {
	t             *testing.T
	srv           *httptest.Server
	api           *recorder
	admin, wallet string
	clock         *clock.TestClock
	console       *Console
	store         *holdstore.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(t.TempDir(), "asynclsp.db"), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, api: &recorder{}, store: store}
	if e.admin, _, err = store.CreateToken(ctx, "operator", holdstore.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if e.wallet, _, err = store.CreateToken(ctx, "shop", holdstore.RoleWallet); err != nil {
		t.Fatal(err)
	}
	e.clock = clock.NewTestClock(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	c, err := New(Config{Store: store, API: e.api, Clock: e.clock, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.console = c
	e.srv = httptest.NewServer(c)
	t.Cleanup(e.srv.Close)
	return e
}

// client is a browser: a cookie jar, redirects not followed.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func (e *env) do(c *http.Client, method, path string, hdr map[string]string, body string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *env) login(c *http.Client, token string) (int, http.Header, string) {
	e.t.Helper()
	return e.do(c, "POST", "/console/login",
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		url.Values{"token": {token}}.Encode())
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if status, hdr, _ := e.do(c, "GET", "/console/", nil, ""); status != 303 ||
		hdr.Get("Location") != "/console/login" {
		t.Fatalf("no session: %d to %q, want the login page", status, hdr.Get("Location"))
	}
	for _, tc := range []struct{ name, token, want string }{
		{"garbage", "nope", "not valid"},
		{"wallet", e.wallet, "needs an admin token"},
		{"empty", "", "paste the admin token"},
	} {
		status, hdr, body := e.login(c, tc.token)
		if status < 400 || !strings.Contains(body, tc.want) || hdr.Get("Set-Cookie") != "" {
			t.Fatalf("login with %s: %d, Set-Cookie %q, want %q in\n%s", tc.name, status,
				hdr.Get("Set-Cookie"), tc.want, body)
		}
	}
	status, hdr, _ := e.login(c, e.admin)
	ck := hdr.Get("Set-Cookie")
	if status != 303 || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
		t.Fatalf("login: %d, Set-Cookie %q", status, ck)
	}
	if status, _, body := e.do(c, "GET", "/console/", nil, ""); status != 200 ||
		!strings.Contains(body, "console.js") {
		t.Fatalf("the console page: %d", status)
	}
	if status, hdr, _ := e.do(c, "GET", "/console/static/console.js", nil, ""); status != 200 ||
		!strings.Contains(hdr.Get("Content-Type"), "javascript") {
		t.Fatalf("console.js: %d %q", status, hdr.Get("Content-Type"))
	}
	if _, hdr, _ := e.do(c, "GET", "/console/", nil, ""); !strings.Contains(
		hdr.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("CSP %q", hdr.Get("Content-Security-Policy"))
	}
}

// Reads go to the API as the operator; actions need the CSRF token; what
// is not listed, such as creating a token (its answer has a secret), is
// not reachable.
func TestForward(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	e.login(c, e.admin)

	status, _, body := e.do(c, "GET", "/console/api/v1/payments?state=HELD", nil, "")
	reqs := e.api.forwarded()
	if status != 200 || len(reqs) != 1 {
		t.Fatalf("list: %d %s, %d forwarded", status, body, len(reqs))
	}
	r := reqs[0]
	if r.URL.Path != "/v1/payments" || r.URL.RawQuery != "state=HELD" ||
		r.Header.Get("Authorization") != "Bearer "+e.admin || r.Header.Get("Cookie") != "" {
		t.Fatalf("forwarded %s %s, Authorization %q, Cookie %q", r.URL.Path, r.URL.RawQuery,
			r.Header.Get("Authorization"), r.Header.Get("Cookie"))
	}

	var st statusJSON
	status, _, body = e.do(c, "GET", "/console/api/status", nil, "")
	if status != 200 || !strings.Contains(body, `"operator":"operator"`) {
		t.Fatalf("status: %d %s", status, body)
	}
	st.CSRF = body[strings.Index(body, `"csrf":"`)+8:]
	st.CSRF = st.CSRF[:strings.Index(st.CSRF, `"`)]

	cancel := "/console/api/v1/payments/00/cancel"
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want string
	}{
		{"no CSRF token", nil, "did not come from a console page"},
		{"another site", map[string]string{"X-CSRF-Token": st.CSRF, "Origin": "https://evil.example"},
			"did not come from a console page"},
		{"cross-site fetch", map[string]string{"X-CSRF-Token": st.CSRF, "Sec-Fetch-Site": "cross-site"},
			"did not come from a console page"},
		{"stale page", map[string]string{"X-CSRF-Token": "AAAA" + st.CSRF[4:]}, "this page is stale"},
	} {
		status, _, body := e.do(c, "POST", cancel, tc.hdr, "")
		if status != 403 || !strings.Contains(body, tc.want) || !strings.Contains(body, "othing was changed") {
			t.Fatalf("%s: %d %s", tc.name, status, body)
		}
	}
	if n := len(e.api.forwarded()); n != 1 {
		t.Fatalf("%d requests forwarded, want none of the refused", n-1)
	}
	status, _, body = e.do(c, "POST", cancel, map[string]string{"X-CSRF-Token": st.CSRF,
		"Origin": e.srv.URL}, "")
	reqs = e.api.forwarded()
	if status != 200 || len(reqs) != 2 || reqs[1].URL.Path != "/v1/payments/00/cancel" ||
		reqs[1].Header.Get(csrfHeader) != "" {
		t.Fatalf("cancel: %d %s", status, body)
	}

	// The daemon restarted: a page from before it is stale; its action is
	// refused and not forwarded.
	restarted, err := New(Config{Store: e.store, API: e.api, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	after := httptest.NewServer(restarted)
	t.Cleanup(after.Close)
	req, _ := http.NewRequest("POST", after.URL+cancel, nil)
	req.Header.Set("Cookie", cookieName+"="+e.admin)
	req.Header.Set(csrfHeader, st.CSRF)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "this page is stale") ||
		len(e.api.forwarded()) != 2 {
		t.Fatalf("an action from before a restart: %d %s", resp.StatusCode, b)
	}

	for _, p := range []string{"/console/api/v1/admin/tokens", "/console/api/v1/admin/sender/reannounce"} {
		status, _, body = e.do(c, "POST", p, map[string]string{"X-CSRF-Token": st.CSRF}, "{}")
		if status != 404 && status != 405 {
			t.Fatalf("POST %s: %d %s, want it unreachable", p, status, body)
		}
	}
	if n := len(e.api.forwarded()); n != 2 {
		t.Fatalf("%d requests forwarded, want 2", n)
	}

	// Without a session, or with another client's cookie gone, nothing is
	// forwarded.
	status, _, body = e.do(e.client(), "GET", "/console/api/v1/payments", nil, "")
	if status != 401 || !strings.Contains(body, "not logged in") {
		t.Fatalf("no session: %d %s", status, body)
	}
	status, _, _ = e.do(e.client(), "GET", "/console/api/v1/payments", map[string]string{
		"Cookie": cookieName + "=" + e.wallet}, "")
	if status != 401 || len(e.api.forwarded()) != 2 {
		t.Fatalf("a wallet token's cookie: %d", status)
	}
}

// Run samples the holds at start and every SampleEvery, and stops with
// its context; the charts read the samples.
func TestSeries(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.console.Run(ctx) }()
	// samples waits for n samples, moving the clock on a minute at a time
	// (Run may not wait on it yet when it moves).
	samples := func(n int, tick bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(e.console.series.snapshot()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d samples, want %d", len(e.console.series.snapshot()), n)
			}
			if tick {
				e.clock.SetTime(e.clock.Now().Add(time.Minute))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	samples(1, false)
	samples(2, true)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}

	c := e.client()
	e.login(c, e.admin)
	status, _, body := e.do(c, "GET", "/console/api/series", nil, "")
	if status != 200 || strings.Count(body, `"held":0`) != 2 ||
		!strings.Contains(body, `"at":"2026-12-07T12:00:00Z"`) {
		t.Fatalf("series: %d %s", status, body)
	}
	if status, _, _ := e.do(e.client(), "GET", "/console/api/series", nil, ""); status != 401 {
		t.Fatalf("series without a session: %d", status)
	}
}
