package lnd_test

import (
	"github.com/asynclsp/asynclsp/onionmsg"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lnwire"
)

// These tests run the adapter against real lnd nodes on regtest: alice
// (sender wallet) -> bob (sender LSP) -> carol (receiver LSP) -> dave
// (receiver wallet). They share one network and run in order.

// stepTimeout bounds each wait for an update.
const stepTimeout = 60 * time.Second

// holdCltv is the hold invoice's final CLTV delta, as the sender LSP uses.
const holdCltv = 1008

// safetyMargin is the CLTV margin the sender LSP keeps below the incoming
// HTLC's expiry when paying onwards (DESIGN.md, invariant 4).
const safetyMargin = 40

func TestRegtest(t *testing.T) {
	net := regtest.StartT(t, regtest.Options{})

	t.Run("Basics", func(t *testing.T) { testBasics(t, net) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, net) })
	t.Run("HoldSettle", func(t *testing.T) { testHoldSettle(t, net) })
	t.Run("HoldCancel", func(t *testing.T) { testHoldCancel(t, net) })
	t.Run("RestartWhileAccepted", func(t *testing.T) {
		testRestartWhileAccepted(t, net)
	})
	t.Run("MPP", func(t *testing.T) { testMPP(t, net) })
	t.Run("SignTagged", func(t *testing.T) { testSignTagged(t, net) })
	t.Run("SignMessage", func(t *testing.T) { testSignMessage(t, net) })
	t.Run("Records", func(t *testing.T) { testRecords(t, net) })
	t.Run("CustomMessages", func(t *testing.T) {
		testCustomMessages(t, net)
	})
	t.Run("HtlcEvents", func(t *testing.T) { testHtlcEvents(t, net) })
}

// testHoldSettle is the async payment's happy path at the lnd level: bob
// holds alice's HTLC on dave's hash, pays dave, learns the preimage and
// settles.
func testHoldSettle(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	const amt = lnwire.MilliSatoshi(100_000_000)

	// dave's normal invoice; bob's hold invoice on its hash.
	daveInv, err := net.Dave.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: amt, Memo: "dave", Expiry: time.Hour, Private: true,
	})
	must(t, err)
	hold, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: daveInv.Hash, ValueMsat: amt + 1_000_000,
		Memo: "hold for dave", Expiry: time.Hour, CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, daveInv.Hash)

	invSub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, daveInv.Hash)
	must(t, err)
	defer invSub.Close()
	if inv := next(t, invSub); inv.State != lnd.InvoiceOpen {
		t.Fatalf("first update: state %v, want OPEN", inv.State)
	}

	pay, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	must(t, err)
	defer pay.Close()

	accepted := waitInvoice(t, invSub, lnd.InvoiceAccepted)
	height, err := net.Bob.Client.CurrentHeight(ctx)
	must(t, err)
	if accepted.AmountPaidMsat != amt+1_000_000 {
		t.Fatalf("accepted %v, want %v", accepted.AmountPaidMsat,
			amt+1_000_000)
	}
	expiry := accepted.MinAcceptedExpiry()
	if expiry < height+holdCltv-5 || expiry > height+holdCltv+5 {
		t.Fatalf("HTLC expiry %d, want about %d+%d", expiry, height,
			holdCltv)
	}

	// alice's payment is held: one HTLC in flight, not final.
	waitPayment(t, pay, func(p lnd.Payment) bool {
		return p.Status == lnd.PaymentInFlight && p.InFlightHTLCs() == 1
	})

	// bob pays dave within the incoming HTLC's budget.
	out, err := net.Bob.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice:      daveInv.PaymentRequest,
		FeeLimitMsat: 100_000,
		CLTVLimit:    expiry - height - safetyMargin,
		MaxParts:     16,
	})
	must(t, err)
	defer out.Close()
	paid := final(t, out)
	if paid.Status != lnd.PaymentSucceeded {
		t.Fatalf("bob -> dave: %v (%v)", paid.Status, paid.FailureReason)
	}
	if paid.Preimage.Hash() != daveInv.Hash {
		t.Fatal("bob -> dave: preimage does not match dave's hash")
	}

	// Settle, twice: the second is a no-op.
	must(t, net.Bob.Client.SettleInvoice(ctx, paid.Preimage))
	must(t, net.Bob.Client.SettleInvoice(ctx, paid.Preimage))

	settled := waitInvoice(t, invSub, lnd.InvoiceSettled)
	if settled.Preimage == nil || *settled.Preimage != paid.Preimage {
		t.Fatal("settled invoice without the preimage")
	}
	assertEnded(t, invSub)

	got := final(t, pay)
	if got.Status != lnd.PaymentSucceeded || got.Preimage != paid.Preimage {
		t.Fatalf("alice: %v, preimage %v", got.Status, got.Preimage)
	}

	// A settled invoice cannot be canceled; a paid invoice not paid
	// again.
	err = net.Bob.Client.CancelInvoice(ctx, daveInv.Hash)
	wantErr(t, err, lnd.ErrInvoiceSettled)
	_, err = net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	wantErr(t, err, lnd.ErrPaymentExists)

	must(t, net.WaitNoPendingHTLCs(ctx))
}

// testHoldCancel: bob cancels the held HTLC; alice's payment fails with
// incorrect payment details.
func testHoldCancel(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	preimage := randomPreimage(t)
	hash := preimage.Hash()

	hold, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: hash, ValueMsat: 50_000_000, Expiry: time.Hour,
		CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, hash)
	wantErr(t, net.Bob.Client.SettleInvoice(ctx, preimage),
		lnd.ErrInvoiceOpen)

	invSub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, hash)
	must(t, err)
	defer invSub.Close()

	pay, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	must(t, err)
	defer pay.Close()
	waitInvoice(t, invSub, lnd.InvoiceAccepted)

	// While the HTLC is held the payment is in flight: sending it again
	// is refused, tracking it works.
	_, err = net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	wantErr(t, err, lnd.ErrPaymentExists)
	track, err := net.Alice.Client.TrackPayment(ctx, hash)
	must(t, err)
	defer track.Close()
	if p := next(t, track); p.Status != lnd.PaymentInFlight || p.Hash != hash {
		t.Fatalf("tracked: %v for %v", p.Status, p.Hash)
	}

	must(t, net.Bob.Client.CancelInvoice(ctx, hash))
	must(t, net.Bob.Client.CancelInvoice(ctx, hash))

	waitInvoice(t, invSub, lnd.InvoiceCanceled)
	assertEnded(t, invSub)

	for _, sub := range []*lnd.Subscription[lnd.Payment]{pay, track} {
		got := final(t, sub)
		if got.Status != lnd.PaymentFailed ||
			got.FailureReason != lnd.FailureIncorrectPaymentDetails {

			t.Fatalf("alice: %v (%v), want FAILED "+
				"(incorrect_payment_details)", got.Status,
				got.FailureReason)
		}
	}
	wantErr(t, net.Bob.Client.SettleInvoice(ctx, preimage),
		lnd.ErrInvoiceCanceled)

	must(t, net.WaitNoPendingHTLCs(ctx))
}

// testMPP: alice pays in several parts; the hold invoice is ACCEPTED only
// once all of them arrived.
func testMPP(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	preimage := randomPreimage(t)
	hash := preimage.Hash()
	const amt = lnwire.MilliSatoshi(300_000_000)

	hold, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: hash, ValueMsat: amt, Expiry: time.Hour,
		CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, hash)
	invSub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, hash)
	must(t, err)
	defer invSub.Close()

	pay, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice:          hold.PaymentRequest,
		FeeLimitMsat:     10_000,
		MaxParts:         8,
		MaxShardSizeMsat: 100_000_000,
	})
	must(t, err)
	defer pay.Close()

	// Every update before ACCEPTED is OPEN; ACCEPTED comes with the full
	// amount in several HTLCs.
	var accepted lnd.Invoice
	for accepted.State != lnd.InvoiceAccepted {
		accepted = next(t, invSub)
		if accepted.State != lnd.InvoiceOpen &&
			accepted.State != lnd.InvoiceAccepted {

			t.Fatalf("state %v before ACCEPTED", accepted.State)
		}
		if accepted.State == lnd.InvoiceOpen &&
			accepted.AmountPaidMsat >= amt {

			t.Fatalf("OPEN with %v paid", accepted.AmountPaidMsat)
		}
	}
	var parts int
	var sum lnwire.MilliSatoshi
	for _, h := range accepted.HTLCs {
		if h.State == lnd.HTLCAccepted {
			parts++
			sum += h.AmountMsat
		}
	}
	if parts < 3 || sum != amt || accepted.AmountPaidMsat != amt {
		t.Fatalf("ACCEPTED with %d parts summing to %v (paid %v), want "+
			">= 3 parts of %v", parts, sum, accepted.AmountPaidMsat, amt)
	}

	must(t, net.Bob.Client.SettleInvoice(ctx, preimage))
	waitInvoice(t, invSub, lnd.InvoiceSettled)

	got := final(t, pay)
	succeeded := 0
	for _, h := range got.HTLCs {
		if h.Status == lnd.AttemptSucceeded {
			succeeded++
		}
	}
	if got.Status != lnd.PaymentSucceeded || succeeded < 3 {
		t.Fatalf("alice: %v with %d settled parts", got.Status,
			succeeded)
	}
	must(t, net.WaitNoPendingHTLCs(ctx))
}

// nodeKey is onionmsg.NodeKey.
type nodeKey = onionmsg.NodeKey

// testSignTagged: dave's signature verifies against his node key and fails
// with another key, another tag or a changed byte.
func testSignTagged(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	tag := []byte("asynclsp/release_held_htlc/v1")
	msg := []byte("release hold 42 for payment hash 00..ff")

	sig, err := net.Dave.Client.SignTagged(ctx, tag, msg)
	must(t, err)

	dave, alice := nodeKey(net.Dave.PubKey), nodeKey(net.Alice.PubKey)
	if err := verifyTagged(tag, msg, sig, dave); err != nil {
		t.Fatalf("dave's signature, dave's key: %v", err)
	}
	if verifyTagged(tag, msg, sig, alice) == nil {
		t.Fatal("dave's signature verifies with alice's key")
	}
	if verifyTagged([]byte("asynclsp/other/v1"), msg, sig, dave) == nil {
		t.Fatal("signature verifies under another tag")
	}
	for i := range msg {
		changed := append([]byte(nil), msg...)
		changed[i] ^= 0x01
		if verifyTagged(tag, changed, sig, dave) == nil {
			t.Fatalf("signature verifies with byte %d changed", i)
		}
	}
	for _, i := range []int{0, 31, 32, 63} {
		bad := sig
		bad[i] ^= 0x01
		if verifyTagged(tag, msg, bad, dave) == nil {
			t.Fatalf("signature verifies with its byte %d changed", i)
		}
	}

	// Tags lnd would refuse are refused before the call.
	for _, bad := range [][]byte{nil, []byte("BIP0340/challenge")} {
		_, err := net.Dave.Client.SignTagged(ctx, bad, msg)
		wantErr(t, err, lnd.ErrInvalidRequest)
	}
}
