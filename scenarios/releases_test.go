package scenarios

import (
	"context"
	"encoding/hex"
	"log/slog"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/lsp"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/btcsuite/btcd/btcec/v2"
)

// testBadReleases is scenario 5 but for the release after the deadline
// (testReleaseAfterDeadline):
// a forged release (signed by another key) and a release for another
// sender LSP while the payment is held, then a replay of the genuine
// release after it settled. Each is refused twice: by carol's API, which
// dave's wallet posts to, and by bob, when a receiver LSP relays it
// unchecked over NATS. Nothing changes: states and balances stay.
func testBadReleases(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdOne(t, c, 20_000_000, 0)
	relay := relayAsCarol(t, c)
	holding, err := c.Balances(ctx)
	must(t, err)

	t.Run("forged", func(t *testing.T) {
		key, err := btcec.NewPrivateKey()
		must(t, err)
		forged, err := SignReleaseWith(ctx, h.item,
			onionmsg.NewPrivKeySigner(key))
		must(t, err)
		refusedByCarol(t, c, forged, receiverclient.CodeInvalidRequest)
		refusedByBob(t, c, relay, forged, "rejected")
		unchanged(t, c, h, senderclient.StateHeld, holding)
	})

	t.Run("for another sender LSP", func(t *testing.T) {
		other := *h.item
		other.SenderLSP = c.Carol.NodeKey
		rel, err := c.SignRelease(ctx, &other)
		must(t, err)
		refusedByCarol(t, c, rel, receiverclient.CodeNotFound)
		refusedByBob(t, c, relay, rel, "rejected")
		unchanged(t, c, h, senderclient.StateHeld, holding)
	})

	// The genuine release still works, once.
	rel, err := c.SignRelease(ctx, h.item)
	must(t, err)
	h.release(t, c)
	checkSettledOnce(t, c, before, h)
	settled, err := c.Balances(ctx)
	must(t, err)

	t.Run("replayed after settle", func(t *testing.T) {
		refusedByCarol(t, c, rel, receiverclient.CodeConflict)
		refusedByBob(t, c, relay, rel, "stale")
		unchanged(t, c, h, senderclient.StateSettled, settled)
		must(t, c.Net.WaitNoPendingHTLCs(ctx))
	})
}

// relayAsCarol connects to bob's NATS as carol, signing envelopes with
// carol's lnd: a receiver LSP that relays whatever it is given, unchecked.
func relayAsCarol(t *testing.T, c *Cast) *lspnet.Node {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	conn, err := bus.Connect(ctx, bus.ClientConfig{
		URLs:    []string{c.Bob.NATSURL},
		NodeKey: bus.NodeKey(c.Carol.NodeKey),
		Name:    "scenarios: carol relaying unchecked",
		Logger:  slog.New(slog.DiscardHandler),
	})
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	node, err := lspnet.New(lspnet.Config{Transport: conn,
		Signer: c.Net.Carol.Client})
	must(t, err)

	return node
}

// refusedByCarol posts a release as dave's wallet and checks carol refuses
// it with code.
func refusedByCarol(t *testing.T, c *Cast, rel, code string) {
	t.Helper()
	_, err := c.Dave.PostRelease(testCtx(t, time.Minute), rel)
	if !receiverclient.IsCode(err, code) {
		t.Fatalf("carol answered %v, want %s", err, code)
	}
}

// refusedByBob relays a release to bob over NATS and waits until bob has
// judged it as verdict ("rejected" or "stale").
func refusedByBob(t *testing.T, c *Cast, relay *lspnet.Node, rel,
	verdict string) {

	t.Helper()
	ctx := testCtx(t, time.Minute)
	raw, err := hex.DecodeString(rel)
	must(t, err)
	msg, err := onionmsg.DecodeReleaseHeldHTLC(raw)
	must(t, err)
	const metric = "asynclsp_sender_releases_total"
	was, err := c.Bob.Metric(ctx, metric, "verdict", verdict)
	must(t, err)
	accepted, err := c.Bob.Metric(ctx, metric, "verdict", "accepted")
	must(t, err)
	must(t, relay.Send(ctx, c.Bob.NodeKey, msg))
	waitMetric(t, c.Bob, metric, was+1, "verdict", verdict)
	if now, err := c.Bob.Metric(ctx, metric, "verdict", "accepted"); err != nil ||
		now != accepted {

		t.Fatalf("bob's accepted releases went from %v to %v (%v)",
			accepted, now, err)
	}
}

// waitMetric waits until d's metric reaches want.
func waitMetric(t *testing.T, d *lsp.Daemon, name string, want float64,
	labels ...string) {

	t.Helper()
	err := poll(testCtx(t, time.Minute), name, func(ctx context.Context) (bool, error) {
		v, err := d.Metric(ctx, name, labels...)
		return v >= want, err
	})
	must(t, err)
}

// unchanged checks that h is still in state and the balances are still
// want, alice's payment as it was.
func unchanged(t *testing.T, c *Cast, h *held, state senderclient.State,
	want Balances) {

	t.Helper()
	ctx := testCtx(t, time.Minute)
	p, err := c.Wallet.Payment(ctx, h.p.ID)
	must(t, err)
	// UpdatedAt moves when bob marks a final hold resolved at lnd.
	if p.State != state || p.State != h.p.State || p.Reason != h.p.Reason ||
		p.Attempts != h.p.Attempts || p.IncomingExpiry != h.p.IncomingExpiry {

		t.Fatalf("payment changed: %s (%q, %d attempts), was %s (%q, %d "+
			"attempts)", p.State, p.Reason, p.Attempts, h.p.State,
			h.p.Reason, h.p.Attempts)
	}
	alice := map[senderclient.State]lnd.PaymentStatus{
		senderclient.StateHeld:     lnd.PaymentInFlight,
		senderclient.StateSettled:  lnd.PaymentSucceeded,
		senderclient.StateCanceled: lnd.PaymentFailed,
	}[state]
	if st := h.pay.Last().Status; st != alice {
		t.Fatalf("alice's payment is %s, want %s", st, alice)
	}
	got, err := c.Balances(ctx)
	must(t, err)
	if !got.Equal(want) {
		t.Fatalf("balances moved: %v", got.Minus(want))
	}
}
