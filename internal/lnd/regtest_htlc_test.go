package lnd_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// testHtlcEvents is what issue 15's design rests on (its risk 2): bob
// holds alice's HTLCs on hold invoices without a stream per invoice.
//
//   - lnrpc's SubscribeInvoices never reports ACCEPTED or CANCELED;
//   - canceling a hold invoice yields RECEIVE HTLC events whose circuit
//     is the invoice HTLC's (chan_id, htlc_index), and settling one a
//     settle and a final settle on the same circuit;
//   - ListPendingInvoices lists the ACCEPTED invoices with their circuits
//     and leaves out the settled and canceled ones;
//   - the HTLC event stream comes back after bob's lnd restarts, with a
//     resubscribed marker, and reports the next cancel;
//   - an invoice canceled while the payer's link is offline is reported
//     when the payer is back, on the same circuit.
func testHtlcEvents(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	bob := net.Bob.Client

	events, err := bob.SubscribeHtlcEvents(ctx)
	must(t, err)
	defer events.Close()
	if ev := next(t, events); ev.Kind != lnd.HtlcSubscribed {
		t.Fatalf("first HTLC event %+v, want SUBSCRIBED", ev)
	}
	invoices := subscribeInvoices(t, net.Bob)

	// Three hold invoices, all paid by alice and ACCEPTED.
	var holds [4]heldInvoice
	for i := range 3 {
		holds[i] = holdAndPay(t, net, lnwire.MilliSatoshi(20_000_000+i))
	}

	// (d) The pending listing, in pages of one, has all three with their
	// circuits.
	pending := listAllPending(t, bob, holds[0].inv.AddIndex-1, 1)
	for _, h := range holds[:3] {
		got, ok := pending[h.hash]
		if !ok || got.State != lnd.InvoiceAccepted ||
			got.AddIndex != h.inv.AddIndex ||
			len(got.HTLCs) != 1 || got.HTLCs[0].Circuit() != h.circuit {

			t.Fatalf("pending listing for %v: %+v (found %v), want "+
				"ACCEPTED at add index %d with circuit %+v",
				h.hash, got, ok, h.inv.AddIndex, h.circuit)
		}
	}

	// (b) Cancel the first: a RECEIVE link failure and a final failure
	// on its circuit.
	must(t, bob.CancelInvoice(ctx, holds[0].hash))
	seen := waitHtlc(t, events, lnd.HtlcFinalFailed, holds[0].circuit)
	wantHtlcKinds(t, "cancel", seen, holds[0].circuit,
		lnd.HtlcLinkFailed, lnd.HtlcFinalFailed)

	// (c) Settle the second: a settle and a final settle on its circuit.
	must(t, bob.SettleInvoice(ctx, holds[1].preimage))
	seen = waitHtlc(t, events, lnd.HtlcFinalSettled, holds[1].circuit)
	wantHtlcKinds(t, "settle", seen, holds[1].circuit,
		lnd.HtlcSettled, lnd.HtlcFinalSettled)

	// (a) SubscribeInvoices, read up to the second's SETTLED (lnd sends
	// each subscriber its updates in order), never said ACCEPTED or
	// CANCELED for any of them.
	states := readInvoicesUntil(t, invoices, holds[1].hash,
		lnrpc.Invoice_SETTLED)
	for _, h := range holds[:3] {
		t.Logf("SubscribeInvoices for hold %d: %v", h.addIndex(),
			states[h.hash])
		for _, s := range states[h.hash] {
			if s == lnrpc.Invoice_ACCEPTED || s == lnrpc.Invoice_CANCELED {
				t.Errorf("SubscribeInvoices reported %v for "+
					"hold %d: the design assumes it never "+
					"does", s, h.addIndex())
			}
		}
	}

	// (d) The settled and the canceled invoice are gone from the
	// listing; the third is still there.
	pending = listAllPending(t, bob, holds[0].inv.AddIndex-1, 2)
	if _, ok := pending[holds[0].hash]; ok {
		t.Error("canceled invoice still listed as pending")
	}
	if _, ok := pending[holds[1].hash]; ok {
		t.Error("settled invoice still listed as pending")
	}
	if _, ok := pending[holds[2].hash]; !ok {
		t.Error("accepted invoice missing from the pending listing")
	}

	// (e) bob's lnd restarts: the stream comes back with a marker, and
	// the third's cancel is reported on it.
	restart(t, net.Bob)
	seen = waitHtlc(t, events, lnd.HtlcResubscribed, lnd.CircuitKey{})
	t.Logf("HTLC events up to the resubscription: %+v", seen)
	must(t, bob.CancelInvoice(ctx, holds[2].hash))
	seen = waitHtlc(t, events, lnd.HtlcFinalFailed, holds[2].circuit)
	wantHtlcKinds(t, "cancel after bob's restart", seen, holds[2].circuit,
		lnd.HtlcLinkFailed, lnd.HtlcFinalFailed)

	// An offline link: bob cancels while alice is down. Nothing can fail
	// back yet; once alice is back the events come, on the same circuit.
	holds[3] = holdAndPay(t, net, 20_000_003)
	must(t, net.Alice.Stop(ctx))
	must(t, bob.CancelInvoice(ctx, holds[3].hash))
	restarting := time.Now()
	must(t, net.Alice.Start(ctx))
	seen = waitHtlc(t, events, lnd.HtlcFinalFailed, holds[3].circuit)
	wantHtlcKinds(t, "cancel while alice was offline", seen,
		holds[3].circuit, lnd.HtlcLinkFailed, lnd.HtlcFinalFailed)
	if failed := seen[0].Time; failed.Before(restarting) {
		t.Errorf("link failure at %v, before alice started again at %v",
			failed, restarting)
	} else {
		t.Logf("link failure %v after alice began to start",
			failed.Sub(restarting).Round(time.Millisecond))
	}

	for _, h := range holds {
		got := final(t, h.pay)
		want := lnd.PaymentFailed
		if h.hash == holds[1].hash {
			want = lnd.PaymentSucceeded
		}
		if got.Status != want {
			t.Errorf("alice's payment of hold %d: %v (%v), want %v",
				h.addIndex(), got.Status, got.FailureReason, want)
		}
	}
	must(t, net.WaitNoPendingHTLCs(ctx))
}

// heldInvoice is a hold invoice of bob's that alice paid and bob holds.
type heldInvoice struct {
	preimage lntypes.Preimage
	hash     lntypes.Hash
	inv      lnd.Invoice // as LookupInvoice returned it once ACCEPTED
	circuit  lnd.CircuitKey
	pay      *lnd.Subscription[lnd.Payment]
}

func (h heldInvoice) addIndex() uint64 { return h.inv.AddIndex }

// holdAndPay adds a hold invoice of amt at bob, has alice pay it, and
// returns it once ACCEPTED, with its one HTLC's circuit. AddHoldInvoice's
// add index must be LookupInvoice's.
func holdAndPay(t *testing.T, net *regtest.Network,
	amt lnwire.MilliSatoshi) heldInvoice {

	t.Helper()
	ctx := testContext(t)
	h := heldInvoice{preimage: randomPreimage(t)}
	h.hash = h.preimage.Hash()
	added, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: h.hash, ValueMsat: amt, Expiry: time.Hour,
		CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, h.hash)
	if added.AddIndex == 0 {
		t.Fatal("AddHoldInvoice returned no add index")
	}

	sub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, h.hash)
	must(t, err)
	defer sub.Close()
	h.pay, err = net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: added.PaymentRequest, FeeLimitMsat: 10_000,
	})
	must(t, err)
	t.Cleanup(h.pay.Close)
	waitInvoice(t, sub, lnd.InvoiceAccepted)

	h.inv, err = net.Bob.Client.LookupInvoice(ctx, h.hash)
	must(t, err)
	if h.inv.State != lnd.InvoiceAccepted || h.inv.AddIndex != added.AddIndex ||
		len(h.inv.HTLCs) != 1 || h.inv.HTLCs[0].State != lnd.HTLCAccepted {

		t.Fatalf("looked up: %v at add index %d with HTLCs %+v; "+
			"AddHoldInvoice said add index %d", h.inv.State,
			h.inv.AddIndex, h.inv.HTLCs, added.AddIndex)
	}
	h.circuit = h.inv.HTLCs[0].Circuit()
	if h.circuit.ChanID != net.AliceBobChan {
		t.Fatalf("HTLC on channel %d, want alice's %d", h.circuit.ChanID,
			net.AliceBobChan)
	}
	t.Logf("hold %d ACCEPTED, circuit %+v", h.inv.AddIndex, h.circuit)

	return h
}

// listAllPending pages through bob's pending invoices after add index
// after, limit per page, and returns them by hash.
func listAllPending(t *testing.T, c *lnd.Client, after uint64,
	limit uint32) map[lntypes.Hash]lnd.Invoice {

	t.Helper()
	ctx := testContext(t)
	out := map[lntypes.Hash]lnd.Invoice{}
	for pages := 1; ; pages++ {
		page, err := c.ListPendingInvoices(ctx, after, limit)
		must(t, err)
		for _, inv := range page {
			if inv.AddIndex <= after || inv.State.IsFinal() {
				t.Fatalf("page after %d: invoice %d %v", after,
					inv.AddIndex, inv.State)
			}
			after = inv.AddIndex
			out[inv.Hash] = inv
		}
		if len(page) < int(limit) {
			t.Logf("%d pending invoices in %d pages of %d", len(out),
				pages, limit)
			return out
		}
	}
}

// waitHtlc reads HTLC events until one of kind on circuit, and returns
// the events of that circuit read on the way, that one included. It fails
// after stepTimeout.
func waitHtlc(t *testing.T, sub *lnd.Subscription[lnd.HtlcEvent],
	kind lnd.HtlcEventKind, circuit lnd.CircuitKey) []lnd.HtlcEvent {

	t.Helper()
	var seen []lnd.HtlcEvent
	for {
		ev := next(t, sub)
		t.Logf("HTLC event %v circuit %+v detail %q offchain %v",
			ev.Kind, ev.Circuit, ev.FailureDetail, ev.Offchain)
		if ev.Circuit == circuit {
			seen = append(seen, ev)
		}
		if ev.Kind == kind && ev.Circuit == circuit {
			return seen
		}
	}
}

// wantHtlcKinds checks that the events of circuit were exactly kinds, in
// order.
func wantHtlcKinds(t *testing.T, what string, seen []lnd.HtlcEvent,
	circuit lnd.CircuitKey, kinds ...lnd.HtlcEventKind) {

	t.Helper()
	var got []lnd.HtlcEventKind
	for _, ev := range seen {
		got = append(got, ev.Kind)
	}
	if len(got) != len(kinds) {
		t.Fatalf("%s: events %v on %+v, want %v", what, got, circuit, kinds)
	}
	for i := range kinds {
		if got[i] != kinds[i] {
			t.Fatalf("%s: events %v on %+v, want %v", what, got,
				circuit, kinds)
		}
	}
}

// subscribeInvoices opens lnrpc's SubscribeInvoices on node, without a
// backlog, and returns its updates; the channel closes when the stream
// ends.
func subscribeInvoices(t *testing.T, node *regtest.Node) <-chan *lnrpc.Invoice {
	t.Helper()
	conn, err := lndclient.NewBasicConn(node.RPCAddr(), node.TLSCertPath,
		filepath.Dir(node.MacaroonPath), "regtest",
		lndclient.MacFilename(filepath.Base(node.MacaroonPath)))
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		conn.Close()
	})
	stream, err := lnrpc.NewLightningClient(conn).SubscribeInvoices(ctx,
		&lnrpc.InvoiceSubscription{})
	must(t, err)

	out := make(chan *lnrpc.Invoice, 64)
	go func() {
		defer close(out)
		for {
			inv, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case out <- inv:
			case <-ctx.Done():
				return
			}
		}
	}()

	return out
}

// readInvoicesUntil reads invoice updates until hash reaches state, and
// returns the states seen per hash. It fails after stepTimeout.
func readInvoicesUntil(t *testing.T, updates <-chan *lnrpc.Invoice,
	hash lntypes.Hash, state lnrpc.Invoice_InvoiceState) map[lntypes.Hash][]lnrpc.Invoice_InvoiceState {

	t.Helper()
	seen := map[lntypes.Hash][]lnrpc.Invoice_InvoiceState{}
	timeout := time.After(stepTimeout)
	for {
		select {
		case inv, ok := <-updates:
			if !ok {
				t.Fatal("SubscribeInvoices ended")
			}
			h, err := lntypes.MakeHash(inv.RHash)
			must(t, err)
			seen[h] = append(seen[h], inv.State)
			if h == hash && inv.State == state {
				return seen
			}
		case <-timeout:
			t.Fatalf("SubscribeInvoices: no %v for %v within %v "+
				"(seen %v)", state, hash, stepTimeout, seen)
		}
	}
}
