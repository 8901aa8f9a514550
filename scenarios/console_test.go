package scenarios

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit/browser"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/chromedp/chromedp"
	"github.com/lightningnetwork/lnd/lnwire"
)

// TestConsole is bob's console in headless Chromium, on regtest with the
// real cast: bob's operator logs in with the admin token asynclspd wrote;
// alice pays dave, and the payment shows up HELD within a second, with
// its deadline bar in real blocks; dave releases it and it turns SETTLED;
// another one the operator cancels from the page, after the confirmation,
// and alice's lnd sees it fail.
func TestConsole(t *testing.T) {
	c := newCast(t, regtest.Options{}, Options{})
	timed(t)
	ctx := testCtx(t, 4*time.Minute)
	const amount = lnwire.MilliSatoshi(20_000_000)

	token, err := c.Bob.AdminToken()
	must(t, err)
	b := browser.New(t)
	b.Run(chromedp.Navigate(c.Bob.APIURL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#live.on")))

	// Held, on the page within a second.
	p, err := c.Create(ctx, amount, "")
	must(t, err)
	pay, err := c.AlicePays(ctx, p, 0)
	must(t, err)
	t.Cleanup(pay.Close)
	hp, err := c.WaitState(ctx, p.ID, senderclient.StateHeld)
	must(t, err)
	row := `tr[data-id="` + p.ID + `"]`
	seen := b.WaitText(row+" .state-cell", "HELD", 10*time.Second)
	if lag := seen.Sub(hp.UpdatedAt); lag > time.Second {
		t.Fatalf("HELD on the page %v after it was committed, want within 1s", lag)
	} else {
		t.Logf("HELD on the page %v after the commit", lag.Round(time.Millisecond))
	}
	left, err := strconv.Atoi(b.Attr(row+" .deadline", "data-blocks-left"))
	if err != nil || left <= 0 {
		t.Fatalf("deadline bar: %d blocks left (%v)", left, err)
	}
	b.Screenshot("console-regtest-held.png")

	// dave releases it: SETTLED on the page.
	hash, err := Hash(p)
	must(t, err)
	item, err := c.WaitItem(ctx, hash)
	must(t, err)
	rel, err := c.SignRelease(ctx, item)
	must(t, err)
	_, err = c.Dave.PostRelease(ctx, rel)
	must(t, err)
	b.WaitText(row+" .state-cell", "SETTLED", time.Minute)

	// Another one, canceled by the operator from the page.
	p2, err := c.Create(ctx, amount, "")
	must(t, err)
	pay2, err := c.AlicePays(ctx, p2, 0)
	must(t, err)
	t.Cleanup(pay2.Close)
	_, err = c.WaitState(ctx, p2.ID, senderclient.StateHeld)
	must(t, err)
	row2 := `tr[data-id="` + p2.ID + `"]`
	b.WaitText(row2+" .state-cell", "HELD", 10*time.Second)
	b.Click(row2 + " button.cancel")
	b.WaitText(row2+" .state-cell", "CANCELED", 30*time.Second)
	if msg := b.Dialog(); !strings.Contains(msg, p2.ID) {
		t.Fatalf("the confirmation asked %q", msg)
	}
	got, err := c.Operator.Payment(ctx, p2.ID)
	must(t, err)
	if got.Reason != "canceled_by_operator" {
		t.Fatalf("canceled from the page: %+v", got)
	}
	alice, _, err := pay2.Wait(ctx)
	must(t, err)
	if alice.Status != lnd.PaymentFailed {
		t.Fatalf("alice's payment after the cancel: %s", alice.Status)
	}
	b.Screenshot("console-regtest.png")
}
