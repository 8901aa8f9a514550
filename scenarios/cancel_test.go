package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lntypes"
)

// testCancels: alice's wallet cancels one held payment and bob's operator
// another. Each is recorded with who canceled it (canceled_by_sender with
// alice's wallet token, canceled_by_operator with the admin token), alice's
// funds come back at once, dave's mailbox says canceled with the same
// reason, and nothing else moved. It returns the canceled payments.
func testCancels(t *testing.T, c *Cast) []lntypes.Hash {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)

	var hashes []lntypes.Hash
	for _, by := range []struct {
		client *senderclient.Client
		reason string
	}{
		{c.Wallet, "canceled_by_sender"},
		{c.Operator, "canceled_by_operator"},
	} {
		h := holdOne(t, c, 10_000_000, 0)
		p, err := by.client.Cancel(ctx, h.p.ID)
		must(t, err)
		if p.State != senderclient.StateCanceled || p.Reason != by.reason ||
			p.Owner != AliceWallet {

			t.Fatalf("canceled payment: %s (%q), owner %q; want CANCELED "+
				"(%q), owner %q", p.State, p.Reason, p.Owner, by.reason,
				AliceWallet)
		}
		alice := h.waitAlice(t, lnd.PaymentFailed)
		if alice.FailureReason != lnd.FailureIncorrectPaymentDetails {
			t.Fatalf("alice's payment failed with %s", alice.FailureReason)
		}
		it, err := c.Dave.Item(ctx, h.item.SenderLSP, h.item.HoldID, 0,
			30*time.Second)
		must(t, err)
		if it.State != receiverclient.StateCanceled || it.Reason != by.reason {
			t.Fatalf("dave's item: %s (%q), want canceled (%q)", it.State,
				it.Reason, by.reason)
		}
		hashes = append(hashes, h.hash)
	}

	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	after, err := c.Balances(ctx)
	must(t, err)
	if !after.Equal(before) {
		t.Fatalf("balances moved: %v", after.Minus(before))
	}

	return hashes
}
