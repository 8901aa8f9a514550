package daemon

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/browser"
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
	srv := testkit.StartNATS(t)
	e := newLSPEnv(t, envOptions{urls: []string{srv.ClientURL()}, replicas: 1,
		ackWait: 5 * time.Second})
	e.upload(3)
	b := browser.New(t)
	start := time.Now()

	// A bad token: a clear message, no session.
	b.Run(chromedp.Navigate(e.bob.api.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := b.Text("#login-error"); !strings.Contains(msg, "not valid") {
		t.Fatalf("bad token: the login page says %q", msg)
	}
	b.Screenshot("console-login-refused.png")

	b.Run(chromedp.SendKeys(chromedp.CSS("#token"), e.bob.admin),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#live.on")))

	// Held: on the page within a second of the commit, with its bar.
	ctx := context.Background()
	h1, err := e.createAndPay(ctx, "browser-1")
	if err != nil {
		t.Fatal(err)
	}
	row1 := `tr[data-id="` + h1.ID.String() + `"]`
	seen := b.WaitText(row1+" .state-cell", "HELD", 10*time.Second)
	heldAt := eventAt(t, e.bob.store, h1.ID, holdstore.StateHeld)
	if lag := seen.Sub(heldAt); lag > time.Second {
		t.Fatalf("HELD on the page %v after it was committed, want within 1s", lag)
	} else {
		t.Logf("HELD on the page %v after the commit", lag.Round(time.Millisecond))
	}
	left, err := strconv.Atoi(b.Attr(row1+" .deadline", "data-blocks-left"))
	if err != nil || left <= 0 || uint32(left) != h1Deadline(t, e, h1.ID)-currentHeight(t, e) {
		t.Fatalf("deadline bar: %d blocks left (%v)", left, err)
	}
	if w := b.Eval(`getComputedStyle(document.querySelector('` + row1 + ` .bar > span')).width`); w == "0px" || w == "" {
		t.Fatalf("deadline bar width %q", w)
	}
	b.Screenshot("console-held.png")

	// dave comes online and releases it: SETTLED on the page.
	relCtx, stopRelease := context.WithCancel(ctx)
	released := make(chan struct{})
	go func() { defer close(released); e.releaseLoop(relCtx, 1) }()
	b.WaitText(row1+" .state-cell", "SETTLED", 15*time.Second)
	stopRelease()
	<-released

	// Its whole history on a click.
	b.Click(row1 + " td")
	b.Run(chromedp.WaitVisible(chromedp.CSS("#detail")))
	b.WaitText("#detail-history tbody", "SETTLED", 5*time.Second)
	if hist := b.Text("#detail-history tbody"); !strings.Contains(hist, "HELD") ||
		!strings.Contains(hist, "RELEASED") || !strings.Contains(hist, "FORWARDING") {
		t.Fatalf("history of the settled payment:\n%s", hist)
	}
	b.Screenshot("console-detail.png")
	b.Run(chromedp.Click(chromedp.CSS("#detail-close")))

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
	b.WaitText(row2+" .state-cell", "HELD", 10*time.Second)
	b.WaitText(row3+" .state-cell", "HELD", 10*time.Second)

	// Without the page's CSRF token, the cookie alone cancels nothing.
	if status := b.Eval(`fetch('/console/api/v1/payments/` + h3.ID.String() +
		`/cancel', {method: 'POST'}).then(r => String(r.status))`); status != "403" {
		t.Fatalf("a cancel without the CSRF token: status %s", status)
	}
	if got, err := e.bob.store.Get(ctx, h3.ID); err != nil || got.State != holdstore.StateHeld {
		t.Fatalf("after a refused cancel: %v, %v", got.State, err)
	}

	b.Click(row2 + " button.cancel")
	b.WaitText(row2+" .state-cell", "CANCELED", 10*time.Second)
	if msg := b.Dialog(); !strings.Contains(msg, h2.ID.String()) || !strings.Contains(msg, "funds back") {
		t.Fatalf("the confirmation asked %q", msg)
	}
	if got, err := e.bob.store.Get(ctx, h2.ID); err != nil || got.State != holdstore.StateCanceled ||
		got.Reason != holdstore.ReasonCanceledByOperator {
		t.Fatalf("canceled from the page: %+v, %v", got, err)
	}
	if msg := b.Text("#banner"); !strings.Contains(msg, "canceled (canceled_by_operator)") {
		t.Fatalf("banner %q", msg)
	}

	// Blocks pass: the held payment's bar turns red near its deadline
	// (the page reads the height every 5s).
	if left := h1Deadline(t, e, h3.ID) - currentHeight(t, e); left > 100 {
		e.bobLnd.Mine(left - 100)
	}
	b.WaitText(row3+" .deadline", "100 blocks", 10*time.Second)
	if cls := b.Attr(row3+" .deadline > span", "class"); cls != "bar near" {
		t.Fatalf("100 blocks before the deadline the bar is %q, want red (bar near)", cls)
	}
	b.Screenshot("console.png")

	// The fate of recent payments, filtered by reason.
	b.Run(chromedp.Navigate(e.bob.api.URL+"/console/#recent"),
		chromedp.WaitVisible(chromedp.CSS("#live.on")))
	b.WaitText("#recent tbody", h2.ID.String()[:12], 5*time.Second)
	b.Run(chromedp.SetValue(chromedp.CSS("#f-reason"), string(holdstore.ReasonCanceledByOperator)))
	b.Eval(`document.querySelector('#f-reason').dispatchEvent(new Event('change')), ''`)
	if rows := b.Text("#recent tbody"); !strings.Contains(rows, h2.ID.String()[:12]) ||
		strings.Contains(rows, h1.ID.String()[:12]) {
		t.Fatalf("recent, canceled by the operator:\n%s", rows)
	}
	b.Screenshot("console-recent.png")

	// The charts: the daemon's samples, the latency of the settled
	// payment, the cancellation by its reason.
	b.Run(chromedp.Navigate(e.bob.api.URL+"/console/#charts"),
		chromedp.WaitVisible(chromedp.CSS("#chart-held svg polyline")))
	b.WaitText("#chart-reasons", string(holdstore.ReasonCanceledByOperator), 5*time.Second)
	b.WaitText("#chart-latency", "≤ 1s1", 5*time.Second)
	b.Screenshot("console-charts.png")

	// A wallet token revoked from the tokens page, after the confirmation;
	// no secret on the page.
	shop, shopTok, err := e.bob.store.CreateToken(ctx, "shop", holdstore.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	rowTok := `#tokens tr[data-id="` + shopTok.ID + `"]`
	b.Run(chromedp.Navigate(e.bob.api.URL+"/console/#tokens"),
		chromedp.WaitVisible(chromedp.CSS(rowTok+" button.revoke")),
		chromedp.Click(chromedp.CSS(rowTok+" button.revoke")))
	b.WaitText("#banner", `Token "shop" revoked`, 5*time.Second)
	if _, err := e.bob.store.AuthenticateToken(ctx, shop); !errors.Is(err, holdstore.ErrTokenRevoked) {
		t.Fatalf("the token revoked from the page authenticates: %v", err)
	}
	if msg := b.Dialog(); !strings.Contains(msg, `Revoke token "shop"`) {
		t.Fatalf("the confirmation asked %q", msg)
	}
	secret := shop[len(shopTok.ID)+1:]
	if html := b.Eval(`document.documentElement.outerHTML`); strings.Contains(html, secret) ||
		strings.Contains(html, e.bob.admin) {
		t.Fatal("the tokens page shows a secret")
	}

	// carol's console (the receivers page, as she has no payments of
	// her own): dave registered, his invoice stock, his mailbox.
	b.Run(chromedp.Navigate(e.carol.api.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), e.carol.admin),
		chromedp.Click(chromedp.CSS("#login")),
		// carol runs no sender role: no event stream, her pages poll.
		chromedp.WaitVisible(chromedp.CSS("#live.on")))
	b.WaitText(`#receivers tbody`, e.dave.String()[:20], 5*time.Second)
	b.WaitText(`#mailbox tr[data-id="`+h3.ID.String()+`"]`, "pending", 5*time.Second)
	b.Screenshot("console-receivers.png")
	t.Logf("browser part took %v", time.Since(start).Round(time.Millisecond))
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
