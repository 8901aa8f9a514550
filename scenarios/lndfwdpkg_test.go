package scenarios

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// heldHTLC is one hold invoice at bob paid by alice, with the id of its
// HTLC on the alice -> bob channel.
type heldHTLC struct {
	preimage [32]byte
	hash     []byte
	htlcID   uint64
}

// TestLndForwardingPackageAckIndex reproduces, with lnd's own RPCs and no
// asynclsp, the lnd bug behind the broken channels of the soak (README,
// "What lnd breaks"). Since lnd v0.20.0 (commit 755bb09a7), a link that
// replays a forwarding package some of whose adds are already answered
// gives each remaining add the forwarding-package index of its position
// among the unanswered ones, not its own. The answer to such an add then
// acknowledges another add of the package:
//
//   - the add it answers stays unacknowledged, is replayed at the next start
//     of the link, and its settle fails (the HTLC is gone): the link fails
//     at every start from then on;
//   - the add it wrongly acknowledges is not replayed at the next start, so
//     a hold HTLC still on the channel is no longer known to the link: its
//     settle or cancel never reaches the peer.
//
// Every start of the link replays its packages: a restart of lnd, and a
// reconnection of the peer, which for a sender's phone is every time it
// comes back. Three hold HTLCs from one commitment: the first is settled,
// alice's lnd restarts, the third is settled (acknowledging the second's
// index), alice's lnd restarts again, and bob's link replays the third.
//
// With lnd as pinned (v0.21.1) the test asserts the failure, so that a fixed
// lnd shows here. Built with the fix (`make regtest-bin LND_FIX=1`, see
// scenarios/lndfix), it asserts what lnd should do: the link stays up and
// the second hold is settled.
func TestLndForwardingPackageAckIndex(t *testing.T) {
	timed(t)
	// Alice's lnd signs a commitment every 2 s rather than every 50 ms,
	// so that her three adds below go in one commitment however slowly
	// a loaded machine sends them.
	net := regtest.StartT(t, regtest.Options{LndArgs: map[string][]string{
		regtest.Alice: {"--channel-commit-interval=2s"}}})
	alice, bob := net.Node("alice"), net.Node("bob")
	ctx := testCtx(t, 8*time.Minute)

	bobInvoices := invoicesrpc.NewInvoicesClient(dialLnd(t, bob))
	aliceRouter := routerrpc.NewRouterClient(dialLnd(t, alice))

	// Three hold invoices, paid at once so that alice's link puts the
	// three adds in one commitment, and bob's lnd in one forwarding
	// package.
	held := make([]*heldHTLC, 3)
	requests := make([]string, len(held))
	for i := range held {
		h := &heldHTLC{}
		_, err := rand.Read(h.preimage[:])
		must(t, err)
		sum := sha256.Sum256(h.preimage[:])
		h.hash = sum[:]
		inv, err := bobInvoices.AddHoldInvoice(ctx,
			&invoicesrpc.AddHoldInvoiceRequest{
				Hash: h.hash, ValueMsat: 10_000_000 + int64(i),
				CltvExpiry: 80,
			})
		must(t, err)
		held[i], requests[i] = h, inv.PaymentRequest
	}
	// Alice's payment streams are read until the test ends.
	var readers sync.WaitGroup
	defer readers.Wait()
	payCtx, stopPaying := context.WithCancel(ctx)
	defer stopPaying()
	for _, pr := range requests {
		stream, err := aliceRouter.SendPaymentV2(payCtx,
			&routerrpc.SendPaymentRequest{
				PaymentRequest: pr, TimeoutSeconds: 600,
				FeeLimitSat: 1000,
			})
		must(t, err)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, err := stream.Recv(); err != nil {
					return
				}
			}
		}()
	}

	// Bob's lnd holds all three; their HTLC ids order them in the
	// forwarding package.
	for _, h := range held {
		h.htlcID = waitAccepted(t, ctx, bobInvoices, h.hash)
	}
	sort.Slice(held, func(i, j int) bool {
		return held[i].htlcID < held[j].htlcID
	})
	if held[2].htlcID-held[0].htlcID != 2 {
		t.Fatalf("the three HTLCs are not adjacent: %d %d %d",
			held[0].htlcID, held[1].htlcID, held[2].htlcID)
	}

	settle := func(h *heldHTLC) {
		t.Helper()
		_, err := bobInvoices.SettleInvoice(ctx,
			&invoicesrpc.SettleInvoiceMsg{Preimage: h.preimage[:]})
		must(t, err)
		_, err = bob.WaitChannel(ctx, alice, "without the settled HTLC",
			func(c lnd.Channel) bool { return !carries(c, h.hash) })
		must(t, err)
	}
	restartAlice := func(wait time.Duration) {
		t.Helper()
		must(t, alice.Stop(ctx))
		// Start waits for alice's channels to be active; with the bug,
		// the channel to bob does not come back after the second
		// restart, which is asserted below, so its error is only
		// logged.
		startCtx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if err := alice.Start(startCtx); err != nil {
			t.Logf("alice's lnd restarted: %v", err)
		}
	}

	settle(held[0])
	restartAlice(time.Minute)
	settle(held[2])
	restartAlice(10 * time.Second)

	logged := func() bool {
		b, err := os.ReadFile(bob.LogPath)
		must(t, err)
		return bytes.Contains(b, brokenLinkLine)
	}
	if !regtest.LndFixed(net.BinDir(), regtest.FixForwardingPackageAckIndex) {
		// lnd v0.21.1: the replayed third add breaks bob's link.
		deadline := time.Now().Add(time.Minute)
		for !logged() {
			if time.Now().After(deadline) {
				t.Fatalf("bob's lnd never logged %q: has lnd been "+
					"fixed? Then see scenarios/lndfix", brokenLinkLine)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("bob's lnd logged %q: the link is broken", brokenLinkLine)

		return
	}

	// With the fix: the link is up, the second hold settles, and the
	// channel is empty.
	_, err := bob.WaitChannel(ctx, alice, "active",
		func(c lnd.Channel) bool { return c.Active })
	must(t, err)
	settle(held[1])
	must(t, bob.WaitNoPendingHTLCs(ctx))
	if logged() {
		t.Fatalf("bob's lnd logged %q", brokenLinkLine)
	}
}

// carries reports whether c has an HTLC of hash.
func carries(c lnd.Channel, hash []byte) bool {
	for _, h := range c.HTLCs {
		if bytes.Equal(h.Hash[:], hash) {
			return true
		}
	}

	return false
}

// waitAccepted waits until the hold invoice of hash is ACCEPTED and returns
// the id of its HTLC on the channel.
func waitAccepted(t *testing.T, ctx context.Context,
	invoices invoicesrpc.InvoicesClient, hash []byte) uint64 {

	t.Helper()
	deadline := time.Now().Add(regtest.DefaultWait)
	for {
		inv, err := invoices.LookupInvoiceV2(ctx,
			&invoicesrpc.LookupInvoiceMsg{
				InvoiceRef: &invoicesrpc.LookupInvoiceMsg_PaymentHash{
					PaymentHash: hash,
				},
			})
		must(t, err)
		if inv.State == lnrpc.Invoice_ACCEPTED && len(inv.Htlcs) == 1 {
			return inv.Htlcs[0].HtlcIndex
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %x: %v with %d HTLCs, want ACCEPTED "+
				"with one", hash, inv.State, len(inv.Htlcs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
