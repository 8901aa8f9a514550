package lnd_test

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
)

// testRecords reads the nodes' whole records while alice's HTLC is held
// on a hold invoice of bob's and after it is canceled: the pending HTLC on
// both ends of their channel, the payment and the invoice in each state,
// the payments the earlier tests made, and no channel closing or closed.
func testRecords(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	preimage := randomPreimage(t)
	hash := preimage.Hash()
	const amount = 30_000_000
	hold, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: hash, ValueMsat: amount, Expiry: time.Hour, CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, hash)
	invSub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, hash)
	must(t, err)
	defer invSub.Close()
	pay, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	must(t, err)
	defer pay.Close()
	waitInvoice(t, invSub, lnd.InvoiceAccepted)

	// Held: an outgoing HTLC at alice, an incoming one at bob.
	for _, end := range []struct {
		node     *regtest.Node
		incoming bool
	}{{net.Alice, false}, {net.Bob, true}} {
		chans, err := end.node.Client.ListChannels(ctx)
		must(t, err)
		var found []lnd.ChannelHTLC
		for _, ch := range chans {
			for _, h := range ch.HTLCs {
				if h.Hash == hash {
					found = append(found, h)
				}
			}
		}
		if len(found) != 1 || found[0].Incoming != end.incoming ||
			found[0].AmountMsat != amount || found[0].ExpiryHeight == 0 {

			t.Fatalf("%s's HTLCs for the held payment: %+v", end.node.Name,
				found)
		}
	}
	alicePays := paymentsFor(t, net.Alice, hash)
	if len(alicePays) != 1 || alicePays[0].Status != lnd.PaymentInFlight {
		t.Fatalf("alice's payments while held: %+v", alicePays)
	}
	if inv := invoiceFor(t, net.Bob, hash); inv.State != lnd.InvoiceAccepted ||
		inv.AmountPaidMsat != amount {
		t.Fatalf("bob's hold invoice while held: %v, %d paid", inv.State,
			inv.AmountPaidMsat)
	}

	must(t, net.Bob.Client.CancelInvoice(ctx, hash))
	if p := final(t, pay); p.Status != lnd.PaymentFailed {
		t.Fatalf("alice's payment: %v", p.Status)
	}
	alicePays = paymentsFor(t, net.Alice, hash)
	if len(alicePays) != 1 || alicePays[0].Status != lnd.PaymentFailed {
		t.Fatalf("alice's payments after the cancel: %+v", alicePays)
	}
	if inv := invoiceFor(t, net.Bob, hash); inv.State != lnd.InvoiceCanceled {
		t.Fatalf("bob's hold invoice after the cancel: %v", inv.State)
	}

	// The earlier tests' settled payments are listed, with their
	// preimages.
	all, err := net.Alice.Client.ListPayments(ctx)
	must(t, err)
	succeeded := 0
	for _, p := range all {
		if p.Status == lnd.PaymentSucceeded {
			succeeded++
			if p.Preimage.Hash() != p.Hash {
				t.Fatalf("payment %v listed with a wrong preimage", p.Hash)
			}
		}
	}
	if succeeded == 0 || len(all) < 3 {
		t.Fatalf("alice lists %d payments, %d succeeded", len(all), succeeded)
	}

	must(t, net.WaitNoPendingHTLCs(ctx))
	for _, n := range net.Nodes() {
		pending, err := n.Client.PendingChannels(ctx)
		must(t, err)
		closed, err := n.Client.ClosedChannels(ctx)
		must(t, err)
		if len(pending.Opening)+len(pending.WaitingClose)+
			len(pending.ForceClosing)+len(closed) != 0 {

			t.Fatalf("%s: pending %+v, closed %+v", n.Name, pending, closed)
		}
	}
}

// paymentsFor lists the node's payments for hash.
func paymentsFor(t *testing.T, n *regtest.Node, hash lntypes.Hash) []lnd.Payment {
	t.Helper()
	all, err := n.Client.ListPayments(testContext(t))
	must(t, err)
	var out []lnd.Payment
	for _, p := range all {
		if p.Hash == hash {
			out = append(out, p)
		}
	}

	return out
}

// invoiceFor finds the node's invoice for hash in its whole list.
func invoiceFor(t *testing.T, n *regtest.Node, hash lntypes.Hash) lnd.Invoice {
	t.Helper()
	all, err := n.Client.ListInvoices(testContext(t))
	must(t, err)
	for _, inv := range all {
		if inv.Hash == hash {
			return inv
		}
	}
	t.Fatalf("%s lists no invoice for %v among %d", n.Name, hash, len(all))

	return lnd.Invoice{}
}
