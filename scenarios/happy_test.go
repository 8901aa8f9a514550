package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// testHappyPath is scenario 1: dave is offline while alice pays him
// through bob; the payment is held, carol's mailbox has it and a signed
// webhook wakes dave's wallet; blocks pass; dave comes back and releases;
// it settles and the money moved exactly once.
func testHappyPath(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	const amount = lnwire.MilliSatoshi(25_000_000)

	before, err := c.Balances(ctx)
	must(t, err)
	hooksFrom := len(c.Hooks.Received())
	must(t, c.Net.Dave.Stop(ctx))

	p, err := c.Create(ctx, amount, "")
	must(t, err)
	if p.State != senderclient.StateCreated || p.AmountMsat != uint64(amount) ||
		p.HoldAmountMsat != p.AmountMsat+p.FeeMsat || p.FeeMsat == 0 {

		t.Fatalf("created payment: %+v", p)
	}
	hash, err := Hash(p)
	must(t, err)

	pay, err := c.AlicePays(ctx, p, 0)
	must(t, err)
	t.Cleanup(pay.Close)
	hp, err := c.WaitState(ctx, p.ID, senderclient.StateHeld)
	must(t, err)
	if hp.IncomingExpiry == 0 || hp.DeadlineHeight >= hp.IncomingExpiry {
		t.Fatalf("held payment: expiry %d, deadline %d",
			hp.IncomingExpiry, hp.DeadlineHeight)
	}

	item, err := c.WaitItem(ctx, hash)
	must(t, err)
	if item.AmountMsat != amount || item.State != receiverclient.StatePending ||
		item.DeadlineHeight != hp.DeadlineHeight {

		t.Fatalf("mailbox item: %+v", item)
	}
	if _, _, err := c.Hooks.Wait(ctx, receiverclient.MethodPaymentIncoming,
		hooksFrom); err != nil {
		t.Fatal(err)
	}

	must(t, c.Net.Mine(ctx, 6))
	if p, err := c.Wallet.Payment(ctx, p.ID); err != nil ||
		p.State != senderclient.StateHeld {

		t.Fatalf("after 6 blocks: %+v, %v", p, err)
	}
	if st := pay.Last().Status; st != lnd.PaymentInFlight {
		t.Fatalf("alice's payment is %s while held", st)
	}

	must(t, c.Net.Dave.Start(ctx))
	rel, err := c.SignRelease(ctx, item)
	must(t, err)
	it, err := c.Dave.PostRelease(ctx, rel)
	must(t, err)
	it, err = c.Dave.WaitOutcome(ctx, it)
	must(t, err)
	if it.State != receiverclient.StateSettled {
		t.Fatalf("dave's item after the release: %+v", it)
	}
	alice, _, err := pay.Wait(ctx)
	must(t, err)
	if alice.Status != lnd.PaymentSucceeded || alice.Preimage.Hash() != hash {
		t.Fatalf("alice's payment: %s, preimage for %s", alice.Status,
			alice.Preimage.Hash())
	}
	settled, err := c.WaitState(ctx, p.ID, senderclient.StateSettled)
	must(t, err)
	if !settled.Settled || settled.Reason != "" {
		t.Fatalf("settled payment: %+v", settled)
	}

	checkSettledOnce(t, c, before, &held{p: settled, hash: hash})
	if bad := c.Hooks.Refused(); len(bad) > 0 {
		t.Fatalf("webhooks that did not verify: %+v", bad)
	}
}
