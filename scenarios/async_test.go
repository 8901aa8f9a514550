package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
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
