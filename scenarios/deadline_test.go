package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Bob's policy in TestDeadlines: a hold of 400 blocks has its deadline
// 160 blocks after it is held (400 - 40 safety - 200 outbound budget), few
// enough to mine; patient retries come quickly.
var deadlineBob = []string{
	"sender.hold-cltv-delta=400",
	"sender.quick-retry=200ms",
	"sender.quick-retry=200ms",
	"sender.slow-retry-interval=1s",
}

// safetyMargin is bob's sender.safety-margin-blocks (the default).
const safetyMargin = 40

// TestDeadlines runs the scenarios that mine toward a hold's deadline, on a
// network where dave's channel cannot take a payment: carol pushed almost
// all of it to dave, so she can forward him less than lnd's smallest
// shard.
func TestDeadlines(t *testing.T) {
	c := newCast(t, regtest.Options{
		CarolDaveSat: 200_000, CarolDavePushSat: 190_000,
	}, Options{Bob: deadlineBob})
	channels := map[string]int{regtest.Alice: 1, regtest.Bob: 2,
		regtest.Carol: 2, regtest.Dave: 1}
	start, err := c.Balances(testCtx(t, time.Minute))
	must(t, err)

	var h *held
	t.Run("ReceiverNeverReturns", func(t *testing.T) {
		h = testReceiverNeverReturns(t, c)
	})
	t.Run("ReleaseAfterDeadline", func(t *testing.T) {
		if h == nil {
			t.Skip("needs the hold ReceiverNeverReturns canceled")
		}
		testReleaseAfterDeadline(t, c, h)
	})
	t.Run("OutboundFailure", func(t *testing.T) {
		t.Run("patient", func(t *testing.T) {
			testOutboundFailure(t, c, "patient")
		})
		t.Run("fast-fail", func(t *testing.T) {
			testOutboundFailure(t, c, "fast-fail")
		})
	})
	checkNoChannelClosed(t, c.Net, channels)
	// Every hold of the run was canceled, with alice's funds back.
	checkLedgers(t, c, Run{Sent: Expect(c.Sent(), FateCanceled),
		Before: start})
}

// testReceiverNeverReturns is scenario 4: dave stays offline while blocks
// are mined toward the deadline; bob cancels the hold at its deadline, far
// before lnd's own limits, with reason "deadline"; alice's payment fails
// and her funds are back; no HTLC is left and no channel closes.
func testReceiverNeverReturns(t *testing.T, c *Cast) *held {
	timed(t)
	ctx := testCtx(t, 5*time.Minute)
	payers := []*regtest.Node{c.Net.Alice, c.Net.Bob, c.Net.Carol}
	before, err := c.Balances(ctx, payers...)
	must(t, err)
	must(t, c.Net.Dave.Stop(ctx))
	h := holdOne(t, c, 20_000_000, 0)

	height, err := c.Net.Height(ctx)
	must(t, err)
	deadline := h.p.DeadlineHeight
	if h.p.IncomingExpiry-deadline <= safetyMargin || deadline <= height {
		t.Fatalf("held at %d: expiry %d, deadline %d", height,
			h.p.IncomingExpiry, deadline)
	}
	if blocks := int(deadline - height - 1); blocks > 0 {
		mined := time.Now()
		must(t, c.Net.Mine(ctx, blocks))
		t.Logf("mined %d blocks to one before the deadline %d in %v",
			blocks, deadline, time.Since(mined).Round(time.Millisecond))
	}
	if p, err := c.Wallet.Payment(ctx, h.p.ID); err != nil ||
		p.State != senderclient.StateHeld {

		t.Fatalf("a block before the deadline: %+v, %v", p, err)
	}

	must(t, c.Net.Mine(ctx, 1))
	p, err := c.WaitState(ctx, h.p.ID, senderclient.StateCanceled)
	must(t, err)
	at, err := c.Net.Height(ctx)
	must(t, err)
	if p.Reason != "deadline" || !p.Canceled {
		t.Fatalf("canceled payment: %+v", p)
	}
	if left := p.IncomingExpiry - at; left < safetyMargin {
		t.Fatalf("canceled %d blocks before the HTLC expires, want at "+
			"least %d", left, safetyMargin)
	}
	t.Logf("canceled at height %d, %d blocks before alice's HTLC expires",
		at, p.IncomingExpiry-at)
	alice := h.waitAlice(t, lnd.PaymentFailed)
	if alice.FailureReason != lnd.FailureIncorrectPaymentDetails {
		t.Fatalf("alice's payment failed with %s", alice.FailureReason)
	}
	h.p = p

	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	after, err := c.Balances(ctx, payers...)
	must(t, err)
	if !after.Equal(before) {
		t.Fatalf("balances moved: %v", after.Minus(before))
	}

	return h
}

// testReleaseAfterDeadline is the last case of scenario 5: dave comes back
// after the hold was canceled at its deadline and releases it anyway;
// carol refuses the release, bob ignores it when it is relayed unchecked,
// and nothing changes.
func testReleaseAfterDeadline(t *testing.T, c *Cast, h *held) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	must(t, c.Net.Dave.Start(ctx))
	before, err := c.Balances(ctx)
	must(t, err)

	it, err := c.Dave.Item(ctx, h.item.SenderLSP, h.item.HoldID, 0, 0)
	must(t, err)
	if it.State != receiverclient.StateCanceled &&
		it.State != receiverclient.StateExpired {

		t.Fatalf("dave's item after the deadline: %+v", it)
	}
	rel, err := c.SignRelease(ctx, h.item)
	must(t, err)
	refusedByCarol(t, c, rel, receiverclient.CodeConflict)
	refusedByBob(t, c, relayAsCarol(t, c), rel, "stale")
	unchanged(t, c, h, senderclient.StateCanceled, before)
}

// testOutboundFailure is scenario 7: dave's channel cannot take the
// amount, so bob's payment to him fails. A patient payment is retried
// until the deadline, a fast-fail one is not; either way the hold is
// canceled with reason insufficient_liquidity and alice's funds come back.
func testOutboundFailure(t *testing.T, c *Cast, policy string) {
	timed(t)
	ctx := testCtx(t, 5*time.Minute)
	const amount = lnwire.MilliSatoshi(50_000_000)
	forgetFailures(t, c.Net.Bob)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdWith(t, c, amount, 0, policy)
	rel, err := c.SignRelease(ctx, h.item)
	must(t, err)
	_, err = c.Dave.PostRelease(ctx, rel)
	must(t, err)

	if policy == "patient" {
		const tries = 3
		p, err := c.WaitPayment(ctx, h.p.ID, "retried",
			func(p *senderclient.Payment) (bool, error) {
				if p.State.Final() {
					return false, ErrWrongState
				}
				return p.Attempts >= tries, nil
			})
		must(t, err)
		t.Logf("%d attempts, the last failed with %q; mining to the "+
			"deadline %d", p.Attempts, p.Reason, p.DeadlineHeight)
		height, err := c.Net.Height(ctx)
		must(t, err)
		must(t, c.Net.Mine(ctx, int(p.DeadlineHeight-height)))
	}

	p, err := c.WaitState(ctx, h.p.ID, senderclient.StateCanceled)
	must(t, err)
	if p.Reason != "insufficient_liquidity" {
		t.Fatalf("canceled with %q, want insufficient_liquidity", p.Reason)
	}
	if policy == "fast-fail" && p.Attempts != 1 {
		t.Fatalf("fast-fail payment made %d attempts", p.Attempts)
	}
	t.Logf("canceled after %d attempts", p.Attempts)
	alice := h.waitAlice(t, lnd.PaymentFailed)
	if alice.FailureReason != lnd.FailureIncorrectPaymentDetails {
		t.Fatalf("alice's payment failed with %s", alice.FailureReason)
	}
	it, err := c.Dave.Item(ctx, h.item.SenderLSP, h.item.HoldID, 0,
		30*time.Second)
	must(t, err)
	if it.State != receiverclient.StateCanceled ||
		it.Reason != "insufficient_liquidity" {

		t.Fatalf("dave's item: %+v", it)
	}

	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	after, err := c.Balances(ctx)
	must(t, err)
	if !after.Equal(before) {
		t.Fatalf("balances moved: %v", after.Minus(before))
	}
}
