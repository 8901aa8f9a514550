// Package browser drives headless Chromium (Debian's chromium package,
// scripts/install-chromium.sh) from tests, with chromedp: the console's
// browser tests, in-process and on regtest.
//
// Floor: ground (tests only). Owns the browser of the tests; it imports
// none of asynclsp's packages.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromium is the browser's path; without one the test fails, saying how
// to install it (CI does, in .ci/run).
func chromium(t testing.TB) string {
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

// Browser is one headless Chromium tab, accepting every confirmation.
type Browser struct {
	t     testing.TB
	ctx   context.Context
	shots string

	mu      sync.Mutex
	dialogs []string
}

// New starts headless Chromium for the test; it ends with the test.
// Without Chromium the test fails, saying how to install it.
func New(t testing.TB) *Browser {
	exe := chromium(t)
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe),
		chromedp.NoSandbox, chromedp.WindowSize(1400, 900),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	b := &Browser{t: t, ctx: ctx, shots: artifactDir(t)}
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

// Run runs the actions in the tab; an error fails the test.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Eval evaluates a JavaScript expression, awaiting a promise, as a string.
func (b *Browser) Eval(js string) string {
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

// Click clicks the first element sel matches, found and clicked in one
// step: the tables are redrawn as events come, so a node found by one
// protocol call may be gone at the next.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	if got := b.Eval(`(() => { const e = document.querySelector(` + string(q) +
		`); if (!e) return 'none'; e.click(); return 'ok'; })()`); got != "ok" {
		b.t.Fatalf("click %s: no such element", sel)
	}
}

// Text is the text of the first element sel matches, "" if none.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return b.Eval(`(document.querySelector(` + string(q) + `) || {}).textContent || ''`)
}

// Attr is the attribute name of the first element sel matches, "" if none.
func (b *Browser) Attr(sel, name string) string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	n, _ := json.Marshal(name)
	return b.Eval(`(document.querySelector(` + string(q) + `) || {getAttribute: () => ''}).getAttribute(` +
		string(n) + `) || ''`)
}

// WaitText polls until sel's text contains want and returns when it did.
func (b *Browser) WaitText(sel, want string, timeout time.Duration) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := b.Text(sel)
		if strings.Contains(got, want) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Screenshot("failed.png")
			b.t.Fatalf("%s: %q, want %q within %v", sel, got, want, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Dialog is the last confirmation the page asked.
func (b *Browser) Dialog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) == 0 {
		return ""
	}
	return b.dialogs[len(b.dialogs)-1]
}

// Screenshot saves the tab as name (PNG) in the test's artifact dir.
func (b *Browser) Screenshot(name string) {
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
func artifactDir(t testing.TB) string {
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
