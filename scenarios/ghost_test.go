package scenarios

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// TestGhostPaymentCancels: bob's lnd keeps his payment to dave IN_FLIGHT
// with no HTLC on any channel (the soak's lnd_ghost_payment, which lnd
// leaves after a stop just as it hands an HTLC to its switch). Here lnd's
// dev flag --hodl.add-outgoing makes it so at will: bob's link drops every
// outgoing add before it reaches a commitment, and lnd waits for its
// result for good. Bob's daemon must keep the hold FORWARDING while the
// payment could still complete (invariant 2), and cancel alice's HTLC
// (`timeout`) once the chain is past the expiry of every HTLC the payment
// could have: before lnd's own cancel of the hold invoice and long before
// alice's HTLC expires, with no channel closed.
func TestGhostPaymentCancels(t *testing.T) {
	c := newCast(t, regtest.Options{
		LndArgs: map[string][]string{regtest.Bob: {"--hodl.add-outgoing"}},
	}, Options{Bob: deadlineBob})
	timed(t)
	ctx := testCtx(t, 8*time.Minute)
	payers := []*regtest.Node{c.Net.Alice, c.Net.Carol, c.Net.Dave}
	before, err := c.Balances(ctx, payers...)
	must(t, err)

	h := holdOne(t, c, 20_000_000, 0)
	_, err = c.Release(ctx, h.item)
	must(t, err)
	p, err := c.WaitState(ctx, h.p.ID, senderclient.StateForwarding)
	must(t, err)
	// Bob commits FORWARDING before he calls lnd: his payment may not be
	// there yet.
	var sub *lnd.Subscription[lnd.Payment]
	err = poll(ctx, "bob's payment at lnd", func(ctx context.Context) (bool, error) {
		var err error
		sub, err = c.Net.Bob.Client.TrackPayment(ctx, h.hash)
		if errors.Is(err, lnd.ErrPaymentNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	must(t, err)
	ghost := WatchPayment(sub, time.Now())
	defer ghost.Close()

	// Past the deadline, up to the last height at which an attempt's
	// HTLC could still be alive (its CLTV limit ends safetyMargin blocks
	// before alice's HTLC expires): bob keeps the hold FORWARDING.
	height, err := c.Net.Height(ctx)
	must(t, err)
	last := p.IncomingExpiry - safetyMargin
	if last <= height || p.DeadlineHeight >= last {
		t.Fatalf("at %d: deadline %d, expiry %d", height, p.DeadlineHeight,
			p.IncomingExpiry)
	}
	mined := time.Now()
	must(t, c.Net.Mine(ctx, int(last-height)))
	t.Logf("mined %d blocks to %d in %v", last-height, last,
		time.Since(mined).Round(time.Millisecond))
	// Each block pokes the runner: wait until bob has read the last one.
	waitMetric(t, c.Bob, "asynclsp_sender_block_height", float64(last))
	if p, err = c.Wallet.Payment(ctx, h.p.ID); err != nil ||
		p.State != senderclient.StateForwarding {
		t.Fatalf("at height %d, the last an HTLC could live: %+v, %v",
			last, p, err)
	}
	if u := ghost.Last(); u.Status != lnd.PaymentInFlight || len(u.HTLCs) == 0 {
		t.Fatalf("bob's payment at lnd: %+v", u)
	}
	for _, n := range c.Net.Nodes() {
		if n == c.Net.Alice || n == c.Net.Bob {
			continue
		}
		ch, err := n.Client.ListChannels(ctx)
		must(t, err)
		for _, cc := range ch {
			if carries(cc, h.hash[:]) {
				t.Fatalf("%s's channel %d carries the HTLC lnd dropped",
					n.Name, cc.ChanID)
			}
		}
	}

	// One block more: no HTLC of the payment can complete any more.
	must(t, c.Net.Mine(ctx, 1))
	p, err = c.WaitState(ctx, h.p.ID, senderclient.StateCanceled)
	must(t, err)
	at, err := c.Net.Height(ctx)
	must(t, err)
	if p.Reason != "timeout" || !p.Canceled {
		t.Fatalf("canceled payment: %+v", p)
	}
	t.Logf("canceled %q at height %d, %d blocks before alice's HTLC "+
		"expires", p.Reason, at, p.IncomingExpiry-at)
	alice := h.waitAlice(t, lnd.PaymentFailed)
	if alice.FailureReason != lnd.FailureIncorrectPaymentDetails {
		t.Fatalf("alice's payment failed with %s", alice.FailureReason)
	}

	// lnd still calls bob's payment in flight: that is lnd's; no HTLC
	// is left on any channel, none closed, and alice has her funds.
	if u := ghost.Last(); u.Status != lnd.PaymentInFlight {
		t.Fatalf("bob's payment at lnd: %+v", u)
	}
	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	checkNoChannelClosed(t, c.Net, map[string]int{regtest.Alice: 1,
		regtest.Bob: 2, regtest.Carol: 2, regtest.Dave: 1})
	after, err := c.Balances(ctx, payers...)
	must(t, err)
	if !after.Equal(before) {
		t.Fatalf("balances moved: %v", after.Minus(before))
	}
}
