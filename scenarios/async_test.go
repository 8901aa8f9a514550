package scenarios

import (
	"slices"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
)

// bobCarolSat is the size of each of bob's two channels to carol: smaller
// than mppAmount, so bob must split it.
const bobCarolSat = 2_000_000

// TestAsyncPayments runs the scenarios that share one network and one pair
// of daemons: each leaves nothing held behind.
func TestAsyncPayments(t *testing.T) {
	c := newCast(t, regtest.Options{BobCarolSat: bobCarolSat}, Options{
		Webhooks: true,
		Carol:    []string{"receiver.webhook.cooldown=1s"},
	})
	ctx := testCtx(t, 2*time.Minute)
	if _, err := c.Net.OpenChannel(ctx, c.Net.Bob, c.Net.Carol, bobCarolSat,
		0, false); err != nil {
		t.Fatal(err)
	}

	start, err := c.Balances(ctx)
	must(t, err)

	t.Run("HappyPath", func(t *testing.T) { testHappyPath(t, c) })
	t.Run("MultiPart", func(t *testing.T) { testMultiPart(t, c) })
	t.Run("SenderCrashWhileHeld", func(t *testing.T) {
		testSenderCrashWhileHeld(t, c)
	})
	t.Run("CrashAfterPaying", func(t *testing.T) { testCrashAfterPaying(t, c) })
	t.Run("BadReleases", func(t *testing.T) { testBadReleases(t, c) })
	t.Run("ConcurrentPayments", func(t *testing.T) {
		testConcurrentPayments(t, c)
	})
	var canceled []lntypes.Hash
	t.Run("Cancels", func(t *testing.T) { canceled = testCancels(t, c) })

	// Every payment of the run, judged by lnd's own records: each
	// settled exactly once or canceled with alice's funds back, nothing
	// stuck, no channel closed by force, every balance right to the msat.
	t.Run("Ledgers", func(t *testing.T) {
		sent := Expect(c.Sent(), FateSettled)
		for i := range sent {
			if slices.Contains(canceled, sent[i].Hash) {
				sent[i].Want = FateCanceled
			}
		}
		checkLedgers(t, c, Run{Sent: sent, Before: start})
	})
}

// checkLedgers judges the run by every node's ledger and fails the test
// on any violation.
func checkLedgers(t *testing.T, c *Cast, run Run) {
	t.Helper()
	report, err := c.Judge(testCtx(t, 2*time.Minute), run)
	must(t, err)
	if !report.OK() {
		t.Fatalf("the ledgers show: %s", report)
	}
	t.Logf("the ledgers show: %s", report)
}

// checkSettledOnce checks that the held payments hs, settled, moved money
// exactly once since before: for each, alice paid the amount and bob's
// fee, dave got the amount, bob kept his fee less the routing fee, carol
// that fee. Nothing else moved, and no HTLC is left anywhere.
func checkSettledOnce(t *testing.T, c *Cast, before Balances, hs ...*held) {
	t.Helper()
	ctx := testCtx(t, regtest.DefaultWait)
	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	want := Balances{}
	for _, h := range hs {
		out, err := c.BobsPayment(ctx, h.hash)
		must(t, err)
		if out.Status != lnd.PaymentSucceeded {
			t.Fatalf("bob's payment to dave is %s", out.Status)
		}
		one := Settled(int64(h.p.AmountMsat), int64(h.p.FeeMsat),
			int64(out.FeeMsat))
		for name, v := range one {
			want[name] += v
		}
	}
	after, err := c.Balances(ctx)
	must(t, err)
	if got := after.Minus(before); !got.Equal(want) {
		t.Fatalf("balances moved %v, want %v", got, want)
	}
	t.Logf("balances moved %v", want)
}
