package senderlsp

import (
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/lntypes"
)

// An incoming HTLC of a payment that ended (its cancel confirmed by lnd)
// still on a channel after the grace is reported, once, until it is gone:
// the soak met an lnd whose link had failed for good, and the sender's node
// force-closed the channel at the HTLC's expiry. The HTLCs of a hold still
// tracked, of payments that are not ours (forwarded), and on a channel
// whose peer is away, are not.
func TestLingeringHTLCReported(t *testing.T) {
	const every, grace = 7 * time.Minute, 10 * time.Minute
	h := newHarness(t, func(c *Config) { c.LingerInterval, c.LingerGrace = every, grace })
	ctx := context.Background()
	ended, _ := h.heldPayment()
	if err := h.m.Cancel(ctx, ended.ID, holdstore.ReasonCanceledByOperator); err != nil {
		t.Fatal(err)
	}
	h.expectCanceled(ended.ID, holdstore.ReasonCanceledByOperator)
	held, _ := h.heldPayment()

	chans, err := h.lnd.ListChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	htlcs := func(hashes ...lntypes.Hash) {
		c := append([]lnd.Channel(nil), chans...)
		for _, hash := range hashes {
			c[0].HTLCs = append(c[0].HTLCs, lnd.ChannelHTLC{Incoming: true,
				Hash: hash, ExpiryHeight: ended.IncomingExpiry})
		}
		h.lnd.SetChannels(c)
	}
	forwarded := lntypes.Hash{0xf0}
	htlcs(ended.PaymentHash, held.PaymentHash, forwarded)

	// Each check is one ListChannels: waiting for it means the check ran.
	check := func(want float64) {
		t.Helper()
		h.waitTimer(every)
		before := h.lnd.Calls("ListChannels")
		h.advance(every)
		testkit.Eventually(t, 10*time.Second, "a linger check", func() bool {
			return h.lnd.Calls("ListChannels") > before &&
				value(h.m.metrics.lingering) == want
		})
	}
	check(0) // 7 minutes after the end: within the grace
	check(1) // 14 minutes: lnd should have failed it back long ago
	check(1)
	htlcs(held.PaymentHash, forwarded)
	check(0)
	if got := h.get(held.ID); got.State != holdstore.StateHeld {
		t.Fatalf("the held payment is %s", got.State)
	}

	// On an inactive channel: its peer away (a sender's phone offline),
	// nothing to report, lnd fails the HTLC back when it returns; its peer
	// connected, the link failed.
	chans[0].Active = false
	htlcs(ended.PaymentHash)
	check(0)
	h.lnd.SetPeers(chans[0].RemotePubKey)
	check(1)
}
