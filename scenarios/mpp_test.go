package scenarios

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/lnwire"
)

// mppAmount is more than either of bob's two channels to carol can carry,
// so bob must split his payment to dave over both.
const mppAmount = lnwire.MilliSatoshi(3_000_000_000)

// testMultiPart is scenario 6: alice pays the hold invoice in at least
// four parts, and bob pays dave in several, over his two channels with
// carol.
func testMultiPart(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	// The fee is 0.1 % plus 1 sat: a quarter of the amount and a bit
	// more keeps alice at four or five parts.
	h := holdOne(t, c, mppAmount, mppAmount/4+100_000)
	h.release(t, c)

	alice := h.pay.Last()
	holdInv, err := c.Net.Bob.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	out, err := c.BobsPayment(ctx, h.hash)
	must(t, err)
	daveInv, err := c.Net.Dave.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	parts := map[string]int{
		"alice's payment":    succeeded(alice.HTLCs),
		"bob's hold invoice": settledHTLCs(holdInv),
		"bob's payment":      succeeded(out.HTLCs),
		"dave's invoice":     settledHTLCs(daveInv),
	}
	t.Logf("parts: %v", parts)
	if parts["alice's payment"] < 4 || parts["bob's hold invoice"] !=
		parts["alice's payment"] || parts["bob's payment"] < 2 ||
		parts["dave's invoice"] != parts["bob's payment"] {

		t.Fatalf("want at least 4 parts from alice to bob and 2 from bob "+
			"to dave, each counted at both ends: %v", parts)
	}
	checkSettledOnce(t, c, before, h)
}

// succeeded counts a payment's successful HTLCs.
func succeeded(htlcs []lnd.HTLCAttempt) int {
	n := 0
	for _, a := range htlcs {
		if a.Status == lnd.AttemptSucceeded {
			n++
		}
	}

	return n
}

// settledHTLCs counts an invoice's settled HTLCs.
func settledHTLCs(inv lnd.Invoice) int {
	n := 0
	for _, h := range inv.HTLCs {
		if h.State == lnd.HTLCSettled {
			n++
		}
	}

	return n
}
