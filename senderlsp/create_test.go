package senderlsp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// noHolds asserts that refused requests stored nothing and made no invoice.
func (h *harness) noHolds() {
	h.t.Helper()
	page, err := h.store.List(context.Background(), holdstore.Filter{})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(page.Holds) != 0 || h.lnd.Calls("AddHoldInvoice") != 0 {
		h.t.Fatalf("%d holds stored, %d hold invoices made", len(page.Holds),
			h.lnd.Calls("AddHoldInvoice"))
	}
}

// setChannels gives the fake lnd chans, and lets the capacity check's view
// of lnd's channels expire, on the clock, so the next create sees them.
func (h *harness) setChannels(chans []lnd.Channel) {
	h.lnd.SetChannels(chans)
	h.clock.SetTime(h.clock.Now().Add(h.cfg.CapacityRefresh))
}

func TestCreateRefusesBadRequests(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var notAKey onionmsg.NodeKey
	notAKey[0] = 0x02 // x = 0 is not on the curve
	for name, mutate := range map[string]func(*PaymentRequest){
		"zero amount":      func(r *PaymentRequest) { r.AmountMsat = 0 },
		"above the limit":  func(r *PaymentRequest) { r.AmountMsat = h.cfg.MaxAmountMsat + 1 },
		"no receiver":      func(r *PaymentRequest) { r.ReceiverKey = onionmsg.NodeKey{} },
		"receiver off key": func(r *PaymentRequest) { r.ReceiverKey = notAKey },
		"bad policy":       func(r *PaymentRequest) { r.RetryPolicy = "sometimes" },
		"negative hold":    func(r *PaymentRequest) { r.MaxHoldTime = -time.Second },
	} {
		req := h.request(10_000)
		mutate(&req)
		if _, err := h.m.CreatePayment(ctx, req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	h.noHolds()
}

func TestCreateRefusesWhatItCouldNotForward(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	small := []lnd.Channel{{ChanID: 1, RemotePubKey: route.Vertex(h.carol),
		LocalBalance: 20_000, Active: true, MaxOutgoingHTLCs: 483, MaxIncomingHTLCs: 483}}
	h.setChannels(small)
	if _, err := h.m.CreatePayment(ctx, h.request(50_000_000)); !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("50k sat over a 20k sat channel: %v", err)
	}
	full := small
	full[0].LocalBalance, full[0].OutgoingHTLCs = 10_000_000, 483
	h.setChannels(full)
	if _, err := h.m.CreatePayment(ctx, h.request(50_000_000)); !errors.Is(err, ErrNoHTLCSlots) {
		t.Fatalf("no free outgoing slots: %v", err)
	}
	// The sender's own channel must be able to bring the HTLC in.
	_, alice := testkit.Key(4)
	chans := []lnd.Channel{
		{ChanID: 1, RemotePubKey: route.Vertex(h.carol), LocalBalance: 10_000_000,
			Active: true, MaxOutgoingHTLCs: 483, MaxIncomingHTLCs: 483},
		{ChanID: 2, RemotePubKey: route.Vertex(alice), Active: true,
			MaxIncomingHTLCs: 483, IncomingHTLCs: 482},
	}
	h.setChannels(chans)
	req := h.request(50_000_000)
	req.SenderNode = &alice
	if _, err := h.m.CreatePayment(ctx, req); !errors.Is(err, ErrNoHTLCSlots) {
		t.Fatalf("sender's channel full: %v", err)
	}
	h.noHolds()

	// Pending holds count against the liquidity: 0.1 BTC covers one
	// 0.06 BTC payment, not two.
	h.setChannels(chans[:1])
	if _, err := h.m.CreatePayment(ctx, h.request(6_000_000_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.CreatePayment(ctx, h.request(6_000_000_000)); !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("second payment over pending liquidity: %v", err)
	}
}

func TestCreateMapsReceiverLSPAnswers(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	cases := map[onionmsg.ReplyErrorCode]error{
		onionmsg.ReplyUnknownReceiver:  ErrUnknownReceiver,
		onionmsg.ReplyNoInvoicesLeft:   ErrNoInvoice,
		onionmsg.ReplyAmountOutOfRange: ErrAmountOutOfRange,
	}
	for code, want := range cases {
		h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
			return &onionmsg.InvoiceReply{HoldID: req.HoldID, ErrorCode: code}
		}
		if _, err := h.m.CreatePayment(ctx, h.request(10_000)); !errors.Is(err, want) {
			t.Errorf("code %v: err = %v, want %v", code, err, want)
		}
	}
	_, mallory := testkit.Key(9)
	bad := map[string]func(req *onionmsg.InvoiceRequest) string{
		"another payee": func(req *onionmsg.InvoiceRequest) string {
			inv, _ := h.lnd.ReceiverInvoice(mallory, req.Amount, 24*time.Hour)
			return inv
		},
		"another amount": func(req *onionmsg.InvoiceRequest) string {
			inv, _ := h.lnd.ReceiverInvoice(h.dave, req.Amount+1, 24*time.Hour)
			return inv
		},
		"expiring too soon": func(req *onionmsg.InvoiceRequest) string {
			inv, _ := h.lnd.ReceiverInvoice(h.dave, req.Amount, h.cfg.MinInvoiceLife-time.Minute)
			return inv
		},
		"undecodable": func(*onionmsg.InvoiceRequest) string { return "lnbcrtgarbage" },
	}
	for name, make := range bad {
		h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
			return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: make(req)}
		}
		if _, err := h.m.CreatePayment(ctx, h.request(10_000)); !errors.Is(err, ErrBadInvoice) {
			t.Errorf("%s: err = %v, want ErrBadInvoice", name, err)
		}
	}
	h.noHolds()
}

func TestCreateAmountlessInvoicePaysTheAmount(t *testing.T) {
	h := newHarness(t)
	h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		inv, _ := h.lnd.ReceiverInvoice(h.dave, 0, 24*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	hold, msg := h.heldPayment()
	h.relay(h.releaseFor(msg, h.davePriv))
	h.waitResolved(hold.ID)
	if sent := h.lnd.Sent(); len(sent) != 1 || sent[0].AmountMsat != lnwire.MilliSatoshi(10_000_000) {
		t.Fatalf("sent %+v, want the amount for an amountless invoice", sent)
	}
}

// A retried request with the same idempotency key returns the same payment;
// another owner's key is another payment.
func TestCreateIdempotent(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	req := h.request(10_000)
	req.RequestKey = "order-42"
	first, err := h.m.CreatePayment(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.m.CreatePayment(ctx, req)
	if err != nil || again.ID != first.ID || again.HoldInvoice != first.HoldInvoice {
		t.Fatalf("retry made %v (%v), want %s", again, err, first.ID)
	}
	req.Owner = "another-wallet"
	other, err := h.m.CreatePayment(ctx, req)
	if err != nil || other.ID == first.ID {
		t.Fatalf("another owner's key: %v, %v", other, err)
	}
	if n := h.lnd.Calls("AddHoldInvoice"); n != 2 {
		t.Fatalf("%d hold invoices for two payments", n)
	}
}

// If lnd fails to make the hold invoice, the hold is canceled at once and
// the caller gets the error: nothing is left waiting.
func TestCreateHoldInvoiceFailure(t *testing.T) {
	h := newHarness(t)
	h.lnd.FailCalls("AddHoldInvoice", lnd.ErrUnavailable)
	_, err := h.m.CreatePayment(context.Background(), h.request(10_000))
	if !errors.Is(err, lnd.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	page, _ := h.store.List(context.Background(), holdstore.Filter{})
	if len(page.Holds) != 1 {
		t.Fatalf("%d holds", len(page.Holds))
	}
	done := h.waitResolved(page.Holds[0].ID)
	if done.State != holdstore.StateCanceled || done.Reason != holdstore.ReasonInternal {
		t.Fatalf("%s/%s", done.State, done.Reason)
	}
}

// A create whose invoice reply is lost (the receiver LSP answered too late)
// is retried with the same idempotency key: the retry asks with the same
// hold id, so the receiver LSP hands back the invoice it reserved instead
// of burning another.
func TestRetriedCreateAsksForTheSameHold(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	var (
		mu    sync.Mutex
		asked []onionmsg.HoldID
		slow  = true
	)
	reserved := map[onionmsg.HoldID]string{}
	h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		mu.Lock()
		asked = append(asked, req.HoldID)
		inv, ok := reserved[req.HoldID]
		if !ok {
			inv, _ = h.lnd.ReceiverInvoice(h.dave, req.Amount, 24*time.Hour)
			reserved[req.HoldID] = inv
		}
		wait := slow
		slow = false
		mu.Unlock()
		if wait {
			time.Sleep(time.Second) // the reply comes after the sender gave up
		}
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	req := h.request(10_000)
	req.RequestKey = "order-7"
	if _, err := h.m.CreatePayment(context.Background(), req); !errors.Is(err, ErrReceiverLSPUnreachable) {
		t.Fatalf("first create: %v", err)
	}
	hold, err := h.m.CreatePayment(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[0] != asked[1] || asked[0] != onionmsg.HoldID(hold.ID) {
		t.Fatalf("asked for holds %v, created %s", asked, hold.ID)
	}
	if len(reserved) != 1 || reserved[asked[0]] != hold.ReceiverInvoice {
		t.Fatal("the retry used another invoice")
	}
}

// A crash between lnd's AddHoldInvoice and recording its payment request
// leaves a CREATED hold with an invoice at lnd that the sender was never
// given. The wallet retries with its idempotency key (it got no answer):
// until the hold's runner has taken the payment request from lnd, the
// retry is told to try again (503), never handed a payment it cannot pay;
// after, it gets the hold invoice lnd made, and no second one is made.
// Found by the scenarios' TestRandomKills (seed 3): the retried create
// came back with an empty hold invoice, and the hold sat in CREATED until
// its invoice expired.
func TestRetriedCreateCutShortByACrash(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	req := h.request(10_000)
	req.RequestKey = "order-9"
	cut, added := h.cutShortCreate(req)

	// No runner has the hold yet (it was stored behind the role's back,
	// as a restarted daemon's runner may not have got to it).
	_, err := h.m.CreatePayment(ctx, req)
	if !errors.Is(err, ErrCreateUnfinished) {
		t.Fatalf("retried create before the runner: %v, want %v", err,
			ErrCreateUnfinished)
	}

	h.restartBob()
	testkit.Eventually(t, 10*time.Second, "the hold invoice recorded", func() bool {
		return h.get(cut.ID).HoldInvoice == added.PaymentRequest
	})
	got, err := h.m.CreatePayment(ctx, req)
	if err != nil || got.ID != cut.ID || got.HoldInvoice != added.PaymentRequest {
		t.Fatalf("retried create: %+v, %v; want hold %s with invoice %q",
			got, err, cut.ID, added.PaymentRequest)
	}
	if n := h.lnd.Calls("AddHoldInvoice"); n != 1 {
		t.Fatalf("%d hold invoices made for one payment", n)
	}
	h.pay(got)
}

// cutShortCreate leaves what a crash between lnd's AddHoldInvoice and
// recording its answer leaves of a create of req: the hold, CREATED
// without a hold invoice, and the invoice at lnd.
func (h *harness) cutShortCreate(req PaymentRequest) (*holdstore.Hold, lnd.AddedInvoice) {
	h.t.Helper()
	ctx := context.Background()
	receiverInv, preimage := h.lnd.ReceiverInvoice(h.dave, req.AmountMsat, 24*time.Hour)
	cut := &holdstore.Hold{
		ID: holdID(&req), PaymentHash: preimage.Hash(), Owner: req.Owner,
		RequestKey: req.RequestKey, AmountMsat: req.AmountMsat,
		FeeMsat: h.cfg.Fee(req.AmountMsat), ReceiverKey: route.Vertex(h.dave),
		ReceiverLSP: route.Vertex(h.carol), ReceiverInvoice: receiverInv,
		ReceiverInvoiceExpiry: h.clock.Now().Add(24 * time.Hour),
		CltvDelta:             h.cfg.HoldCltvDelta, RetryPolicy: holdstore.RetryPatient,
		DeadlineTime: h.clock.Now().Add(time.Hour),
	}
	if _, err := h.store.Create(ctx, cut); err != nil {
		h.t.Fatal(err)
	}
	added, err := h.lnd.AddHoldInvoice(ctx, holdInvoiceRequest(cut, h.cfg))
	if err != nil {
		h.t.Fatal(err)
	}
	return cut, added
}
