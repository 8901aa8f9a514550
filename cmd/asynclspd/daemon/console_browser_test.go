package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The console in headless Chromium against bob's sender role and carol's
// receiver role (real SQLite, real NATS, bob's lnd the fake): a bad token
// is refused; logged in, a payment shows up HELD within a second of being
// held, with its deadline bar, and turns SETTLED once dave releases it;
// its history opens on a click; another one is canceled from the page
// after the confirmation; a cancel without the CSRF token is refused.
// Screenshots go to $ASYNCLSP_ARTIFACTS (default: a temp dir, logged).
func TestConsoleBrowser(t *testing.T) {
	exe := chromium(t)
	srv := testkit.StartNATS(t)
	e := newLSPEnv(t, envOptions{urls: []string{srv.ClientURL()}, replicas: 1,
		ackWait: 5 * time.Second})
	e.upload(3)
	b := newBrowser(t, exe)
	start := time.Now()

	// A bad token: a clear message, no session.
	b.run(chromedp.Navigate(e.bob.api.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := b.text("#login-error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("bad token: the login page says %q", msg)
	}
	b.screenshot("console-login-refused.png")

	b.run(chromedp.SendKeys(chromedp.CSS("#token"), e.bob.admin),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#live.on")))

	// Held: on the page within a second of the commit, with its bar.
	ctx := context.Background()
	h1, err := e.createAndPay(ctx, "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	row1 := `tr[data-id="` + h1.ID.String() + `"]`
	seen := b.waitText(row1+" .state-cell", "HELD", 10*time.Second)
	heldAt := eventAt(t, e.bob.store, h1.ID, holdstore.StateHeld)
	if lag := seen.Sub(heldAt); lag > time.Second {
		t.Fatalf("HELD on the page %v after it was committed, want within 1s", lag)
	} else {
		t.Logf("HELD on the page %v after the commit", lag.Round(time.Millisecond))
	}
	left, err := strconv.Atoi(b.attr(row1+" .deadline", "data-blocks-left"))
	if err != nil || left <= 0 || uint32(left) != h1Deadline(t, e, h1.ID)-currentHeight(t, e) {
		t.Fatalf("deadline bar: %d blocks left (%v)", left, err)
	}
	if w := b.eval(`getComputedStyle(document.querySelector('` + row1 + ` .bar > span')).width`); w == "0px" || w == "" {
		t.Fatalf("deadline bar width %q", w)
	}
	b.screenshot("console-held.png")

	// dave comes online and releases it: SETTLED on the page.
	relCtx, stopRelease := context.WithCancel(ctx)
	released := make(chan struct{})
	go func() { defer close(released); e.releaseLoop(relCtx, 1) }()
	b.waitText(row1+" .state-cell", "SETTLED", 15*time.Second)
	stopRelease()
	<-released

	// Its whole history on a click.
	b.click(row1 + " td")
	b.run(chromedp.WaitVisible(chromedp.CSS("#detail")))
	b.waitText("#detail-history tbody", "SETTLED", 5*time.Second)
	if hist := b.text("#detail-history tbody"); !strings.Contains(hist, "HELD") ||
		!strings.Contains(hist, "RELEASED") || !strings.Contains(hist, "FORWARDING") {
		t.Fatalf("history of the settled payment:\n%s", hist)
	}
	b.screenshot("console-detail.png")
	b.run(chromedp.Click(chromedp.CSS("#detail-close")))

	// Two more held; the operator cancels one from the page.
	h2, err := e.createAndPay(ctx, "browser-2")
	if err != nil {
		t.Fatal(err)
	}
	h3, err := e.createAndPay(ctx, "browser-3")
	if err != nil {
		t.Fatal(err)
	}
	row2, row3 := `tr[data-id="`+h2.ID.String()+`"]`, `tr[data-id="`+h3.ID.String()+`"]`
	b.waitText(row2+" .state-cell", "HELD", 10*time.Second)
	b.waitText(row3+" .state-cell", "HELD", 10*time.Second)

	// Without the page's CSRF token, the cookie alone cancels nothing.
	if status := b.eval(`fetch('/console/api/v1/payments/` + h3.ID.String() +
		`/cancel', {method: 'POST'}).then(r => String(r.status))`); status != "403" {
		t.Fatalf("a cancel without the CSRF token: status %s", status)
	}
	if got, err := e.bob.store.Get(ctx, h3.ID); err != nil || got.State != holdstore.StateHeld {
		t.Fatalf("after a refused cancel: %v, %v", got.State, err)
	}

	b.click(row2 + " button.cancel")
	b.waitText(row2+" .state-cell", "CANCELED", 10*time.Second)
	if msg := b.dialog(); !strings.Contains(msg, h2.ID.String()) || !strings.Contains(msg, "funds back") {
		t.Fatalf("the confirmation asked %q", msg)
	}
	if got, err := e.bob.store.Get(ctx, h2.ID); err != nil || got.State != holdstore.StateCanceled ||
		got.Reason != holdstore.ReasonCanceledByOperator {
		t.Fatalf("canceled from the page: %+v, %v", got, err)
	}
	if msg := b.text("#banner"); !strings.Contains(msg, "canceled (canceled_by_operator)") {
		t.Fatalf("banner %q", msg)
	}

	// Blocks pass: the held payment's bar turns red near its deadline
	// (the page reads the height every 5s).
	if left := h1Deadline(t, e, h3.ID) - currentHeight(t, e); left > 100 {
		e.bobLnd.Mine(left - 100)
	}
	b.waitText(row3+" .deadline", "100 blocks", 10*time.Second)
	if cls := b.attr(row3+" .deadline > span", "class"); cls != "bar near" {
		t.Fatalf("100 blocks before the deadline the bar is %q, want red (bar near)", cls)
	}
	b.screenshot("console.png")

	// The fate of recent payments, filtered by reason.
	b.run(chromedp.Navigate(e.bob.api.URL+"/console/#recent"),
		chromedp.WaitVisible(chromedp.CSS("#live.on")))
	b.waitText("#recent tbody", h2.ID.String()[:12], 5*time.Second)
	b.run(chromedp.SetValue(chromedp.CSS("#f-reason"), string(holdstore.ReasonCanceledByOperator)))
	b.eval(`document.querySelector('#f-reason').dispatchEvent(new Event('change')), ''`)
	if rows := b.text("#recent tbody"); !strings.Contains(rows, h2.ID.String()[:12]) ||
		strings.Contains(rows, h1.ID.String()[:12]) {
		t.Fatalf("recent, canceled by the operator:\n%s", rows)
	}
	b.screenshot("console-recent.png")

	// The charts: the daemon's samples, the latency of the settled
	// payment, the cancellation by its reason.
	b.run(chromedp.Navigate(e.bob.api.URL+"/console/#charts"),
		chromedp.WaitVisible(chromedp.CSS("#chart-held svg polyline")))
	b.waitText("#chart-reasons", string(holdstore.ReasonCanceledByOperator), 5*time.Second)
	b.waitText("#chart-latency", "≤ 1s1", 5*time.Second)
	b.screenshot("console-charts.png")

	// A wallet token revoked from the tokens page, after the confirmation;
	// no secret on the page.
	shop, shopTok, err := e.bob.store.CreateToken(ctx, "shop", holdstore.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	rowTok := `#tokens tr[data-id="` + shopTok.ID + `"]`
	b.run(chromedp.Navigate(e.bob.api.URL+"/console/#tokens"),
		chromedp.WaitVisible(chromedp.CSS(rowTok+" button.revoke")),
		chromedp.Click(chromedp.CSS(rowTok+" button.revoke")))
	b.waitText("#banner", `Token "shop" revoked`, 5*time.Second)
	if _, err := e.bob.store.AuthenticateToken(ctx, shop); !errors.Is(err, holdstore.ErrTokenRevoked) {
		t.Fatalf("the token revoked from the page authenticates: %v", err)
	}
	if msg := b.dialog(); !strings.Contains(msg, `Revoke token "shop"`) {
		t.Fatalf("the confirmation asked %q", msg)
	}
	secret := shop[len(shopTok.ID)+1:]
	if html := b.eval(`document.documentElement.outerHTML`); strings.Contains(html, secret) ||
		strings.Contains(html, e.bob.admin) {
		t.Fatal("the tokens page shows a secret")
	}

	// carol's console (the receivers page, as she has no payments of
	// her own): dave registered, his invoice stock, his mailbox.
	b.run(chromedp.Navigate(e.carol.api.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.carol.admin),
		chromedp.Click(chromedp.CSS("#login")),
		// carol runs no sender role: no event stream, her pages poll.
		chromedp.WaitVisible(chromedp.CSS("#live.on")))
	b.waitText(`#receivers tbody`, e.dave.String()[:20], 5*time.Second)
	b.waitText(`#mailbox tr[data-id="`+h3.ID.String()+`"]`, "pending", 5*time.Second)
	b.screenshot("console-receivers.png")
	t.Logf("browser part took %v", time.Since(start).Round(time.Millisecond))
}

// chromium is the browser's path; without one the test fails, saying how
// to install it (CI does, in .ci/run).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ASYNCLSP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed: the console's browser test needs it. " +
		"Install it with scripts/install-chromium.sh (apt-get install chromium), " +
		"or point ASYNCLSP_CHROMIUM at a Chromium binary")
	return ""
}

// browser is one headless Chromium tab, accepting every confirmation.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string

	mu      sync.Mutex
	dialogs []string
}

func newBrowser(t *testing.T, exe string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe),
		chromedp.NoSandbox, chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	b := &browser{t: t, ctx: ctx, shots: artifactDir(t)}
	var answering sync.WaitGroup
	t.Cleanup(func() {
		cancelTime()
		cancelTab()
		cancelAlloc()
		answering.Wait()
	})
	// Every confirmation is accepted, and remembered, until the tab
	// ends at cleanup.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	answering.Go(func() {
		for d, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, d.Message)
			b.mu.Unlock()
			_, err := chromedp.Call(ctx, page.HandleJavaScriptDialog,
				page.HandleJavaScriptDialogParams{Accept: true})
			if err != nil && ctx.Err() == nil {
				t.Errorf("accepting the dialog: %v", err)
			}
		}
	})
	return b
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression, awaiting a promise, as a string.
func (b *browser) eval(js string) string {
	b.t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	if s, ok := out.(string); ok {
		return s
	}
	return fmt.Sprint(out)
}

// click clicks the first element sel matches, found and clicked in one
// step: the tables are redrawn as events come, so a node found by one
// protocol call may be gone at the next.
func (b *browser) click(sel string) {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	if got := b.eval(`(() => { const e = document.querySelector(` + string(q) +
		`); if (!e) return 'none'; e.click(); return 'ok'; })()`); got != "ok" {
		b.t.Fatalf("click %s: no such element", sel)
	}
}

// text is the text of the first element sel matches, "" if none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return b.eval(`(document.querySelector(` + string(q) + `) || {}).textContent || ''`)
}

func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	n, _ := json.Marshal(name)
	return b.eval(`(document.querySelector(` + string(q) + `) || {getAttribute: () => ''}).getAttribute(` +
		string(n) + `) || ''`)
}

// waitText polls until sel's text contains want and returns when it did.
func (b *browser) waitText(sel, want string, timeout time.Duration) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.text(sel)
		if strings.Contains(got, want) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.screenshot("failed.png")
			b.t.Fatalf("%s: %q, want %q within %v", sel, got, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialog is the last confirmation the page asked.
func (b *browser) dialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) == 0 {
		return ""
	}
	return b.dialogs[len(b.dialogs)-1]
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.shots, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// artifactDir is where the test's screenshots go: $ASYNCLSP_ARTIFACTS, or
// a directory under the system's temp dir that outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ASYNCLSP_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "asynclsp-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// eventAt is when the hold's transition to state was committed.
func eventAt(t *testing.T, store *holdstore.Store, id holdstore.ID, state holdstore.State) time.Time {
	t.Helper()
	evs, err := store.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.To == state {
			return ev.At
		}
	}
	t.Fatalf("hold %s was never %s", id, state)
	return time.Time{}
}

func h1Deadline(t *testing.T, e *lspEnv, id holdstore.ID) uint32 {
	t.Helper()
	h, err := e.bob.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h.DeadlineHeight
}

func currentHeight(t *testing.T, e *lspEnv) uint32 {
	t.Helper()
	h, err := e.bobLnd.CurrentHeight(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}
