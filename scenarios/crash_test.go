package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// testSenderCrashWhileHeld is scenario 2: bob's asynclspd is killed with
// SIGKILL while it holds alice's HTLC; restarted on the same data, it
// takes the hold up again and dave's release settles it.
func testSenderCrashWhileHeld(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdOne(t, c, 20_000_000, 0)

	must(t, c.Bob.Kill())
	inv, err := c.Net.Bob.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	if inv.State != lnd.InvoiceAccepted {
		t.Fatalf("bob's hold invoice is %s with the daemon dead", inv.State)
	}
	restarted := time.Now()
	must(t, c.RestartBob(ctx))
	t.Logf("bob's asynclspd and carol's link to it back %v after the "+
		"restart", time.Since(restarted).Round(time.Millisecond))
	p, err := c.Wallet.Payment(ctx, h.p.ID)
	must(t, err)
	if p.State != senderclient.StateHeld {
		t.Fatalf("after the restart the payment is %s", p.State)
	}
	h.release(t, c)
	checkSettledOnce(t, c, before, h)
}

// testCrashAfterPaying is scenario 3: bob's asynclspd is killed the moment
// its lnd starts paying dave; lnd finishes the payment while the daemon is
// dead, so dave is paid and alice's HTLC is still held. Restarted, the
// daemon finds the preimage at lnd and settles the hold.
func testCrashAfterPaying(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdOne(t, c, 20_000_000, 0)

	type kill struct {
		at  time.Time
		err error
	}
	killed := make(chan kill, 1)
	outbound := firstSight(t, c.Net.Bob, h.hash, func() {
		err := c.Bob.Kill()
		killed <- kill{time.Now(), err}
	})
	rel, err := c.SignRelease(ctx, h.item)
	must(t, err)
	_, err = c.Dave.PostRelease(ctx, rel)
	must(t, err)

	var out *lnrpc.Payment
	select {
	case out = <-outbound:
	case <-ctx.Done():
		t.Fatal("bob's lnd never paid dave")
	}
	k := <-killed
	must(t, k.err)
	if out == nil || out.Status != lnrpc.Payment_SUCCEEDED {
		t.Fatalf("bob's payment to dave: %v", out)
	}
	t.Logf("bob's daemon killed as its lnd began paying dave; the payment "+
		"succeeded %v later", time.Since(k.at).Round(time.Millisecond))

	daveInv, err := c.Net.Dave.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	holdInv, err := c.Net.Bob.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	if daveInv.State != lnd.InvoiceSettled || holdInv.State != lnd.InvoiceAccepted {
		t.Fatalf("with bob's daemon dead: dave's invoice %s (want SETTLED), "+
			"the hold invoice %s (want ACCEPTED: the daemon settled it "+
			"before it was killed)", daveInv.State, holdInv.State)
	}
	if st := h.pay.Last().Status; st != lnd.PaymentInFlight {
		t.Fatalf("alice's payment is %s before the hold is settled", st)
	}

	must(t, c.RestartBob(ctx))
	if _, err := c.WaitState(ctx, h.p.ID, senderclient.StateSettled); err != nil {
		t.Fatal(err)
	}
	h.waitAlice(t, lnd.PaymentSucceeded)
	checkSettledOnce(t, c, before, h)
}

// held is one async payment held at bob, with dave's mailbox item.
type held struct {
	p    *senderclient.Payment
	hash lntypes.Hash
	pay  *PaymentWatch
	item *receiverclient.Item
}

// holdOne creates a payment to dave, has alice pay it and waits until bob
// holds it and dave's mailbox lists it.
func holdOne(t *testing.T, c *Cast, amount lnwire.MilliSatoshi,
	maxShard lnwire.MilliSatoshi) *held {

	t.Helper()

	return holdWith(t, c, amount, maxShard, "")
}

// holdWith is holdOne with a retry policy.
func holdWith(t *testing.T, c *Cast, amount lnwire.MilliSatoshi,
	maxShard lnwire.MilliSatoshi, policy string) *held {

	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	p, err := c.Create(ctx, amount, policy)
	must(t, err)
	hash, err := Hash(p)
	must(t, err)
	pay, err := c.AlicePays(ctx, p, maxShard)
	must(t, err)
	t.Cleanup(pay.Close)
	if p, err = c.WaitState(ctx, p.ID, senderclient.StateHeld); err != nil {
		t.Fatal(err)
	}
	item, err := c.WaitItem(ctx, hash)
	must(t, err)

	return &held{p: p, hash: hash, pay: pay, item: item}
}

// release has dave sign and post a release of h; it returns once carol
// says it settled, alice's payment succeeded and bob's API says SETTLED.
func (h *held) release(t *testing.T, c *Cast) {
	t.Helper()
	ctx := testCtx(t, 2*time.Minute)
	it, err := c.Release(ctx, h.item)
	must(t, err)
	if it, err = c.Dave.WaitOutcome(ctx, it); err != nil {
		t.Fatal(err)
	}
	if it.State != receiverclient.StateSettled {
		t.Fatalf("dave's item after the release: %+v", it)
	}
	h.waitAlice(t, lnd.PaymentSucceeded)
	p, err := c.WaitState(ctx, h.p.ID, senderclient.StateSettled)
	must(t, err)
	if !p.Settled || p.Reason != "" {
		t.Fatalf("settled payment: %+v", p)
	}
	h.p = p
}

// waitAlice waits for alice's payment to end and checks it ended as want;
// a success must carry the preimage of the payment hash.
func (h *held) waitAlice(t *testing.T, want lnd.PaymentStatus) lnd.Payment {
	t.Helper()
	p, _, err := h.pay.Wait(testCtx(t, 2*time.Minute))
	must(t, err)
	if p.Status != want {
		t.Fatalf("alice's payment is %s (%s), want %s", p.Status,
			p.FailureReason, want)
	}
	if want == lnd.PaymentSucceeded && p.Preimage.Hash() != h.hash {
		t.Fatalf("alice got a preimage for %s, not %s", p.Preimage.Hash(),
			h.hash)
	}

	return p
}
