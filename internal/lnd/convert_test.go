package lnd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

func TestFailureReasonFromRPC(t *testing.T) {
	want := map[lnrpc.PaymentFailureReason]FailureReason{
		lnrpc.PaymentFailureReason_FAILURE_REASON_NONE:                      FailureNone,
		lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT:                   FailureTimeout,
		lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE:                  FailureNoRoute,
		lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR:                     FailureError,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: FailureIncorrectPaymentDetails,
		lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE:      FailureInsufficientBalance,
		lnrpc.PaymentFailureReason_FAILURE_REASON_CANCELED:                  FailureCanceled,
		lnrpc.PaymentFailureReason(99):                                      FailureError,
	}
	// Every value lnd v0.21 defines is mapped, to a distinct reason.
	if len(lnrpc.PaymentFailureReason_name)+1 != len(want) {
		t.Fatalf("lnd has %d failure reasons, the test knows %d",
			len(lnrpc.PaymentFailureReason_name), len(want)-1)
	}
	seen := make(map[FailureReason]bool)
	for rpc, w := range want {
		got := failureReasonFromRPC(rpc)
		if got != w {
			t.Fatalf("%v -> %v, want %v", rpc, got, w)
		}
		if rpc != 99 {
			if seen[got] {
				t.Fatalf("%v mapped twice", got)
			}
			seen[got] = true
		}
	}
}

func TestPaymentFromRPC(t *testing.T) {
	pre := lntypes.Preimage{1, 2, 3}
	hash := pre.Hash()
	ok, err := paymentFromRPC(&lnrpc.Payment{
		PaymentHash:     hash.String(),
		PaymentPreimage: pre.String(),
		Status:          lnrpc.Payment_SUCCEEDED,
		ValueMsat:       5000,
		FeeMsat:         7,
		Htlcs: []*lnrpc.HTLCAttempt{{
			AttemptId: 3,
			Status:    lnrpc.HTLCAttempt_SUCCEEDED,
			Route: &lnrpc.Route{
				TotalAmtMsat: 5007, TotalFeesMsat: 7,
				TotalTimeLock: 700,
				Hops:          []*lnrpc.Hop{{}, {}},
			},
			AttemptTimeNs: 1e9,
		}, {
			AttemptId: 4,
			Status:    lnrpc.HTLCAttempt_FAILED,
			Failure: &lnrpc.Failure{
				Code:               lnrpc.Failure_TEMPORARY_CHANNEL_FAILURE,
				FailureSourceIndex: 1,
			},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok.Status != PaymentSucceeded || ok.Preimage != pre ||
		ok.Hash != hash || ok.ValueMsat != 5000 || ok.FeeMsat != 7 {

		t.Fatalf("payment %+v", ok)
	}
	a := ok.HTLCs[0]
	if a.Status != AttemptSucceeded || a.AmountMsat != 5000 ||
		a.FeeMsat != 7 || a.TimeLock != 700 || a.Hops != 2 ||
		!a.AttemptedAt.Equal(time.Unix(1, 0)) {

		t.Fatalf("attempt %+v", a)
	}
	if f := ok.HTLCs[1]; f.Status != AttemptFailed ||
		f.FailureCode != "TEMPORARY_CHANNEL_FAILURE" ||
		f.FailureSourceIndex != 1 {

		t.Fatalf("failed attempt %+v", f)
	}

	for _, st := range []lnrpc.Payment_PaymentStatus{
		lnrpc.Payment_INITIATED, lnrpc.Payment_IN_FLIGHT,
		lnrpc.Payment_UNKNOWN,
	} {
		p, err := paymentFromRPC(&lnrpc.Payment{
			PaymentHash: hash.String(), Status: st,
		})
		if err != nil || p.Status != PaymentInFlight || p.Status.IsFinal() {
			t.Fatalf("%v -> %v, %v", st, p.Status, err)
		}
	}

	failed, err := paymentFromRPC(&lnrpc.Payment{
		PaymentHash:   hash.String(),
		Status:        lnrpc.Payment_FAILED,
		FailureReason: lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE,
	})
	if err != nil || failed.Status != PaymentFailed ||
		failed.FailureReason != FailureNoRoute {

		t.Fatalf("failed payment %+v, %v", failed, err)
	}

	if _, err := paymentFromRPC(&lnrpc.Payment{PaymentHash: "zz"}); err == nil {
		t.Fatal("bad hash accepted")
	}
}

func TestInvoiceFromRPC(t *testing.T) {
	pre := lntypes.Preimage{9}
	hash := pre.Hash()
	in := &lnrpc.Invoice{
		RHash: hash[:], RPreimage: pre[:], ValueMsat: 3000,
		AmtPaidMsat: 3000, State: lnrpc.Invoice_ACCEPTED,
		CreationDate: 100, Expiry: 3600, CltvExpiry: 1008,
		Private: true,
		Htlcs: []*lnrpc.InvoiceHTLC{
			{ChanId: 7, HtlcIndex: 2, AmtMsat: 1000,
				ExpiryHeight: 1600, AcceptHeight: 500,
				State: lnrpc.InvoiceHTLCState_ACCEPTED},
			{ChanId: 7, HtlcIndex: 1, AmtMsat: 2000,
				ExpiryHeight: 1500,
				State:        lnrpc.InvoiceHTLCState_ACCEPTED},
			{ChanId: 5, HtlcIndex: 9, AmtMsat: 2000,
				ExpiryHeight: 1400,
				State:        lnrpc.InvoiceHTLCState_CANCELED},
		},
	}
	inv, err := invoiceFromRPC(in)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Hash != hash || inv.State != InvoiceAccepted ||
		inv.Preimage == nil || *inv.Preimage != pre ||
		inv.Expiry != time.Hour || inv.CltvExpiry != 1008 ||
		!inv.Private || inv.CreatedAt.Unix() != 100 {

		t.Fatalf("invoice %+v", inv)
	}
	// Sorted by channel, then index; the canceled HTLC does not count
	// for the expiry.
	if inv.HTLCs[0].ChanID != 5 || inv.HTLCs[1].HTLCIndex != 1 ||
		inv.HTLCs[2].HTLCIndex != 2 || inv.HTLCs[0].State != HTLCCanceled {

		t.Fatalf("htlcs %+v", inv.HTLCs)
	}
	if got := inv.MinAcceptedExpiry(); got != 1500 {
		t.Fatalf("MinAcceptedExpiry %d, want 1500", got)
	}

	// The same HTLCs in another order show the same state.
	in.Htlcs[0], in.Htlcs[2] = in.Htlcs[2], in.Htlcs[0]
	again, err := invoiceFromRPC(in)
	if err != nil || !sameInvoiceState(inv, again) {
		t.Fatalf("reordered HTLCs differ: %v", err)
	}
	in.Htlcs[1].State = lnrpc.InvoiceHTLCState_SETTLED
	changed, _ := invoiceFromRPC(in)
	if sameInvoiceState(inv, changed) {
		t.Fatal("an HTLC's state change went unnoticed")
	}

	// A hold invoice has no preimage until settled.
	in.RPreimage = nil
	in.State = lnrpc.Invoice_OPEN
	open, err := invoiceFromRPC(in)
	if err != nil || open.Preimage != nil || open.State != InvoiceOpen {
		t.Fatalf("open hold invoice %+v, %v", open, err)
	}
	if (Invoice{}).MinAcceptedExpiry() != 0 {
		t.Fatal("expiry without HTLCs")
	}

	in.State = lnrpc.Invoice_InvoiceState(42)
	if _, err := invoiceFromRPC(in); err == nil {
		t.Fatal("unknown state accepted")
	}
}

func TestChannelFromRPC(t *testing.T) {
	ch, err := channelFromRPC(&lnrpc.Channel{
		ChanId:       9,
		RemotePubkey: strings.Repeat("02", 1) + strings.Repeat("ab", 32),
		Capacity:     1000, LocalBalance: 600, RemoteBalance: 300,
		Active: true, Private: true,
		PendingHtlcs: []*lnrpc.HTLC{
			{Incoming: true}, {Incoming: true}, {Incoming: false},
		},
		LocalConstraints:  &lnrpc.ChannelConstraints{MaxAcceptedHtlcs: 30},
		RemoteConstraints: &lnrpc.ChannelConstraints{MaxAcceptedHtlcs: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ch.IncomingHTLCs != 2 || ch.OutgoingHTLCs != 1 ||
		ch.PendingHTLCs() != 3 || ch.FreeOutgoingSlots() != 29 ||
		ch.FreeIncomingSlots() != 0 || !ch.Private || !ch.Active {

		t.Fatalf("channel %+v", ch)
	}
	if _, err := channelFromRPC(&lnrpc.Channel{RemotePubkey: "xx"}); err == nil {
		t.Fatal("bad pubkey accepted")
	}
}

func TestPayReqFromRPC(t *testing.T) {
	pre := lntypes.Preimage{4}
	hash := pre.Hash()
	p, err := payReqFromRPC(&lnrpc.PayReq{
		Destination: "03" + strings.Repeat("cd", 32),
		PaymentHash: hash.String(), NumMsat: 1500, Timestamp: 10,
		Expiry: 60, CltvExpiry: 80, Description: "x",
		RouteHints: []*lnrpc.RouteHint{{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash != hash || p.AmountMsat != lnwire.MilliSatoshi(1500) ||
		p.RouteHints != 1 || !p.ExpiresAt().Equal(time.Unix(70, 0)) {

		t.Fatalf("payreq %+v", p)
	}
}

func TestSeconds(t *testing.T) {
	if s, err := seconds(90 * time.Second); err != nil || s != 90 {
		t.Fatalf("90s -> %d, %v", s, err)
	}
	for _, d := range []time.Duration{-time.Second, 1500 * time.Millisecond} {
		if _, err := seconds(d); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("%v accepted", d)
		}
	}
}

func TestSubscription(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sub := newSubscription[int](cancel)
	if sub.Err() != nil {
		t.Fatal("Err before the end")
	}

	go func() {
		sub.send(ctx, 1)
		sub.finish(errors.New("boom"))
	}()
	if v := <-sub.Updates(); v != 1 {
		t.Fatalf("got %d", v)
	}
	if _, ok := <-sub.Updates(); ok {
		t.Fatal("updates not closed")
	}
	<-sub.Done()
	if sub.Err() == nil || sub.Err().Error() != "boom" {
		t.Fatalf("Err = %v", sub.Err())
	}
	if ctx.Err() == nil {
		t.Fatal("finish did not cancel the context")
	}

	// send gives up when the context ends, not blocking the producer.
	ctx2, cancel2 := context.WithCancel(context.Background())
	sub2 := newSubscription[int](cancel2)
	cancel2()
	if sub2.send(ctx2, 1) {
		t.Fatal("send succeeded without a reader after cancel")
	}
}

func TestEnumStrings(t *testing.T) {
	if InvoiceAccepted.String() != "ACCEPTED" || PaymentFailed.String() !=
		"FAILED" || FailureIncorrectPaymentDetails.String() !=
		"incorrect_payment_details" || HTLCSettled.String() != "SETTLED" ||
		AttemptInFlight.String() != "IN_FLIGHT" {

		t.Fatal("enum names changed")
	}
	if !InvoiceCanceled.IsFinal() || InvoiceAccepted.IsFinal() ||
		!PaymentSucceeded.IsFinal() || PaymentInFlight.IsFinal() {

		t.Fatal("IsFinal wrong")
	}
}
