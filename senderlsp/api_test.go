package senderlsp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/senderlsp/client"
)

// A wallet backend's whole payment through the Go client: create (and
// retry), the sender pays, the receiver releases, the stream shows every
// step and one final event.
func TestAPIPaymentSettles(t *testing.T) {
	a := newAPIHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wallet := a.wallet("wallet-a")
	events := pull(t, wallet.Events(ctx, 0))

	const amount = 50_000_000
	p, created, err := wallet.CreatePayment(ctx, a.payReq(amount, "order-1"))
	if err != nil || !created {
		t.Fatalf("create: created %v, %v", created, err)
	}
	inv, ok := a.lnd.Invoice(a.hold(p).PaymentHash)
	if !ok || p.HoldInvoice == "" || p.HoldInvoice != inv.PaymentRequest ||
		p.State != client.StateCreated || p.AmountMsat != amount ||
		p.FeeMsat != uint64(a.cfg.Fee(amount)) || p.HoldAmountMsat != uint64(inv.ValueMsat) ||
		p.ReceiverKey != a.dave.String() || p.Owner != "wallet-a" ||
		p.RetryPolicy != "patient" || !p.CreatedAt.Equal(start) || p.Settled || p.Canceled {
		t.Fatalf("created payment %+v", p)
	}

	// A retry with the same key is the same payment, hold invoice and all.
	again, created, err := wallet.CreatePayment(ctx, a.payReq(amount, "order-1"))
	if err != nil || created || again.ID != p.ID || again.HoldInvoice != p.HoldInvoice {
		t.Fatalf("retry: created %v, %+v, %v", created, again, err)
	}
	// The key is the wallet's: reused for another payment, it is refused.
	_, _, err = wallet.CreatePayment(ctx, a.payReq(amount+1, "order-1"))
	if !errors.Is(err, client.CodeInvalidRequest) {
		t.Fatalf("key reused for another amount: %v", err)
	}
	if page, _ := a.m.Payments(ctx, holdstore.Filter{}); len(page.Holds) != 1 {
		t.Fatalf("%d holds after retries", len(page.Holds))
	}

	want := []client.State{client.StateCreated}
	if ev := events.event(); ev.PaymentID != p.ID || ev.State != client.StateCreated ||
		ev.From != "" || ev.Final {
		t.Fatalf("first event %+v", ev)
	}
	a.settle(p)
	want = append(want, client.StateHeld, client.StateReleased,
		client.StateForwarding, client.StateSettled)
	var last uint64
	for i, st := range want[1:] {
		ev := events.event()
		if ev.PaymentID != p.ID || ev.State != st || ev.From != want[i] ||
			ev.Seq <= last || ev.Final != (st == client.StateSettled) {
			t.Fatalf("event %d: %+v, want %s", i+1, ev, st)
		}
		last = ev.Seq
	}

	got, err := wallet.Payment(ctx, p.ID)
	if err != nil || got.State != client.StateSettled || !got.Settled || got.Canceled ||
		got.IncomingExpiry == 0 || got.DeadlineHeight == 0 || got.Attempts != 1 {
		t.Fatalf("settled payment %+v, %v", got, err)
	}
	if _, err := wallet.Cancel(ctx, p.ID); !errors.Is(err, client.CodeNotCancelable) {
		t.Fatalf("cancel a settled payment: %v", err)
	}
}

func TestAPICancel(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	walletA, walletB := a.wallet("wallet-a"), a.wallet("wallet-b")
	admin := a.client(a.token("ops", holdstore.RoleAdmin))

	// The wallet cancels its held payment: canceled_by_sender, and lnd
	// cancels the hold invoice. Again is fine.
	p := a.createVia(walletA, 10_000_000)
	a.pay(a.hold(p))
	if _, err := walletB.Cancel(ctx, p.ID); !errors.Is(err, client.CodeNotFound) {
		t.Fatalf("another wallet's cancel: %v", err)
	}
	got, err := walletA.Cancel(ctx, p.ID)
	if err != nil || got.State != client.StateCanceled || !got.Canceled ||
		got.Reason != string(holdstore.ReasonCanceledBySender) {
		t.Fatalf("cancel: %+v, %v", got, err)
	}
	a.waitResolved(a.hold(p).ID)
	if st := a.invoiceState(a.hold(p).PaymentHash); st != "CANCELED" {
		t.Fatalf("hold invoice %s", st)
	}
	if again, err := walletA.Cancel(ctx, p.ID); err != nil || again.State != client.StateCanceled {
		t.Fatalf("second cancel: %+v, %v", again, err)
	}
	if n := a.finalEvents(a.hold(p).ID); n != 1 {
		t.Fatalf("%d final events", n)
	}

	// The operator cancels a wallet's payment: canceled_by_operator.
	q := a.createVia(walletA, 10_000_000)
	got, err = admin.Cancel(ctx, q.ID)
	if err != nil || got.Reason != string(holdstore.ReasonCanceledByOperator) {
		t.Fatalf("admin cancel: %+v, %v", got, err)
	}

	// While the payment to the receiver is in flight, no cancel: it may
	// still succeed (invariant 2). Once it has, neither.
	r := a.createVia(walletA, 10_000_000)
	hold := a.pay(a.hold(r))
	a.lnd.Script(hold.PaymentHash, testkit.Outcome{Hang: true})
	a.relay(a.releaseFor(a.announced(hold.ID), a.davePriv))
	a.waitState(hold.ID, holdstore.StateForwarding)
	testkit.Eventually(t, 10*time.Second, "payment in flight", func() bool {
		_, ok := a.lnd.Payment(hold.PaymentHash)
		return ok
	})
	for _, c := range []*client.Client{walletA, admin} {
		if _, err := c.Cancel(ctx, r.ID); !errors.Is(err, client.CodeNotCancelable) {
			t.Fatalf("cancel in flight: %v", err)
		}
	}
	a.lnd.ResolvePayment(hold.PaymentHash, testkit.Outcome{})
	if done := a.waitResolved(hold.ID); done.State != holdstore.StateSettled {
		t.Fatalf("in-flight payment ended %s", done.State)
	}
	var apiErr *client.Error
	if _, err := walletA.Cancel(ctx, r.ID); !errors.As(err, &apiErr) ||
		apiErr.Code != client.CodeNotCancelable || apiErr.Status != http.StatusConflict {
		t.Fatalf("cancel settled: %v", err)
	}

	// Unknown and malformed ids are not found.
	for _, id := range []string{holdstore.NewID().String(), "nope", "ZZ" + p.ID[2:]} {
		if _, err := walletA.Cancel(ctx, id); !errors.Is(err, client.CodeNotFound) {
			t.Fatalf("cancel %q: %v", id, err)
		}
		if _, err := walletA.Payment(ctx, id); !errors.Is(err, client.CodeNotFound) {
			t.Fatalf("get %q: %v", id, err)
		}
	}
}

func TestAPIListFilters(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	walletA, walletB := a.wallet("wallet-a"), a.wallet("wallet-b")
	admin := a.client(a.token("ops", holdstore.RoleAdmin))

	// Five payments of A a minute apart, two of B; two of A held, one of
	// those canceled.
	var mine []*client.Payment // newest first
	var times []time.Time
	for range 5 {
		times = append(times, a.clock.Now())
		mine = append([]*client.Payment{a.createVia(walletA, 1_000_000)}, mine...)
		a.advance(time.Minute)
	}
	a.createVia(walletB, 1_000_000)
	a.createVia(walletB, 1_000_000)
	a.pay(a.hold(mine[0]))
	a.pay(a.hold(mine[3]))
	if _, err := walletA.Cancel(ctx, mine[3].ID); err != nil {
		t.Fatal(err)
	}

	ids := func(opts client.ListOptions, c *client.Client) []string {
		t.Helper()
		var out []string
		for p, err := range c.Payments(ctx, opts) {
			if err != nil {
				t.Fatalf("list %+v: %v", opts, err)
			}
			out = append(out, p.ID)
		}
		return out
	}
	idsOf := func(ps ...*client.Payment) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d payments, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: %v, want %v", name, got, want)
			}
		}
	}
	check("all of A", ids(client.ListOptions{}, walletA), idsOf(mine...))
	check("held", ids(client.ListOptions{States: []client.State{client.StateHeld}}, walletA),
		idsOf(mine[0]))
	check("held or canceled", ids(client.ListOptions{States: []client.State{
		client.StateHeld, client.StateCanceled}}, walletA), idsOf(mine[0], mine[3]))
	check("to dave", ids(client.ListOptions{Receiver: a.dave.String()}, walletA), idsOf(mine...))
	check("to carol", ids(client.ListOptions{Receiver: a.carol.String()}, walletA), nil)
	check("after the second", ids(client.ListOptions{CreatedAfter: times[1]}, walletA),
		idsOf(mine[:3]...))
	check("before the third", ids(client.ListOptions{CreatedBefore: times[2]}, walletA),
		idsOf(mine[3:]...))
	check("between", ids(client.ListOptions{CreatedAfter: times[0],
		CreatedBefore: times[4]}, walletA), idsOf(mine[1:4]...))

	// Pages of two: 2, 2, 1, in order, each with the next cursor.
	var paged []string
	opts := client.ListOptions{Limit: 2}
	for pages := 1; ; pages++ {
		page, err := walletA.PaymentsPage(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if pages == 3 {
			want = 1
		}
		if len(page.Payments) != want || (pages < 3) != (page.NextCursor != "") {
			t.Fatalf("page %d: %d payments, cursor %q", pages, len(page.Payments), page.NextCursor)
		}
		paged = append(paged, idsOf(page.Payments...)...)
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	check("paged", paged, idsOf(mine...))
	check("iterator over pages of 2", ids(client.ListOptions{Limit: 2}, walletA), idsOf(mine...))

	// The operator sees everyone, or one owner.
	if n := len(ids(client.ListOptions{}, admin)); n != 7 {
		t.Fatalf("admin lists %d payments", n)
	}
	if n := len(ids(client.ListOptions{Owner: "wallet-b"}, admin)); n != 2 {
		t.Fatalf("admin lists %d of B's", n)
	}
	// A wallet lists only its own.
	if n := len(ids(client.ListOptions{}, walletB)); n != 2 {
		t.Fatalf("B lists %d", n)
	}
	check("A naming itself", ids(client.ListOptions{Owner: "wallet-a"}, walletA), idsOf(mine...))
	if _, err := walletA.PaymentsPage(ctx, client.ListOptions{Owner: "wallet-b"}); !errors.Is(err, client.CodeForbidden) {
		t.Fatalf("A listing B's: %v", err)
	}

	tok := a.token("wallet-c", holdstore.RoleWallet)
	for _, q := range []string{"state=FOO", "limit=0", "limit=1001", "limit=x",
		"cursor=%21%21", "cursor=AAAA", "created_after=yesterday", "receiver=02ab",
		"stat=HELD", "limit=1&limit=2"} {
		status, body, _ := a.call("GET", "/v1/payments?"+q, tok, "")
		if status != http.StatusBadRequest || errCode(body) != "invalid_request" {
			t.Errorf("?%s: %d %v", q, status, body)
		}
	}
	// Lowercase states are fine.
	status, body, _ := a.call("GET", "/v1/payments?state=held", tok, "")
	if status != http.StatusOK || body["next_cursor"] != "" {
		t.Fatalf("state=held: %d %v", status, body)
	}
}

// A create goes on when its client leaves, so that the retry with the same
// key gets a live payment, not one canceled because the first was cut short.
func TestAPICreateOutlivesItsClient(t *testing.T) {
	a := newAPIHarness(t)
	asked, answer := make(chan struct{}), make(chan struct{})
	var once sync.Once
	reply := a.invoice
	a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		once.Do(func() { close(asked) })
		<-answer
		return reply(req)
	}
	wallet := a.wallet("wallet-a")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := wallet.CreatePayment(ctx, a.payReq(1_000_000, "order-9"))
		errc <- err
	}()
	<-asked
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the first request: %v", err)
	}
	close(answer)

	p, created, err := wallet.CreatePayment(context.Background(), a.payReq(1_000_000, "order-9"))
	if err != nil || created || p.State != client.StateCreated || p.HoldInvoice == "" {
		t.Fatalf("retry: created %v, %+v, %v", created, p, err)
	}
	if _, ok := a.lnd.Invoice(a.hold(p).PaymentHash); !ok {
		t.Fatal("no hold invoice at lnd")
	}
}

// resolved turns true only once lnd has carried out the final state and the
// receiver LSP was told: a canceled payment whose hold invoice lnd has not
// canceled yet, or whose outcome carol has not taken, is not resolved.
func TestAPIResolved(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	tok := a.token("wallet-a", holdstore.RoleWallet)
	wallet := a.client(tok)
	// resolvedField is the raw JSON field: present, and a boolean.
	resolvedField := func(p *client.Payment) any {
		t.Helper()
		status, body, _ := a.call("GET", "/v1/payments/"+p.ID, tok, "")
		if status != http.StatusOK {
			t.Fatalf("get: %d %v", status, body)
		}
		return body["resolved"]
	}
	get := func(p *client.Payment) *client.Payment {
		t.Helper()
		got, err := wallet.Payment(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	p := a.createVia(wallet, 10_000_000)
	if p.Resolved || resolvedField(p) != false {
		t.Fatalf("created payment resolved: %+v, %v", p, resolvedField(p))
	}
	hold := a.pay(a.hold(p))
	if got := get(p); got.State != client.StateHeld || got.Resolved {
		t.Fatalf("held payment %+v", got)
	}

	// Canceled, but lnd refuses to cancel the hold invoice: the sender's
	// HTLC is still held, so the payment is not resolved.
	a.lnd.FailCalls("CancelInvoice", errors.New("test: lnd unavailable"))
	a.outcomesDown.Store(true)
	got, err := wallet.Cancel(ctx, p.ID)
	if err != nil || !got.Canceled || got.Resolved {
		t.Fatalf("cancel: %+v, %v", got, err)
	}
	testkit.Eventually(t, 10*time.Second, "a failed CancelInvoice", func() bool {
		return a.lnd.Calls("CancelInvoice") > 0
	})
	a.advance(2 * time.Second) // a retry
	if got := get(p); !got.Canceled || got.Resolved || resolvedField(p) != false ||
		a.invoiceState(hold.PaymentHash) != "ACCEPTED" {
		t.Fatalf("canceled, invoice %s at lnd: %+v", a.invoiceState(hold.PaymentHash), got)
	}

	// lnd cancels it, but carol is not told yet: still not resolved.
	a.lnd.FailCalls("CancelInvoice", nil)
	testkit.Eventually(t, 10*time.Second, "the hold invoice canceled", func() bool {
		a.advance(10 * time.Second)
		return a.invoiceState(hold.PaymentHash) == "CANCELED"
	})
	if got := get(p); got.Resolved || a.get(hold.ID).Resolved {
		t.Fatalf("resolved before carol was told: %+v", got)
	}

	// Carol takes the outcome: resolved, and it stays so.
	a.outcomesDown.Store(false)
	testkit.Eventually(t, 10*time.Second, "resolved through the API", func() bool {
		a.advance(10 * time.Second)
		return get(p).Resolved
	})
	if len(a.outcomesOf(hold.ID)) == 0 || resolvedField(p) != true {
		t.Fatal("resolved without carol told, or not in the JSON")
	}
	page, err := wallet.PaymentsPage(ctx, client.ListOptions{})
	if err != nil || len(page.Payments) != 1 || !page.Payments[0].Resolved {
		t.Fatalf("listed: %+v, %v", page, err)
	}

	// A settled payment is resolved once its hold invoice is settled.
	q := a.createVia(wallet, 10_000_000)
	a.settle(q)
	if got := get(q); !got.Settled || !got.Resolved {
		t.Fatalf("settled payment %+v", got)
	}
}

// A create that a crash cut short (the hold stored, its hold invoice made
// at lnd but not recorded) is not handed to the wallet's retry without its
// hold invoice: the retry is answered 503 unavailable, which
// CreatePaymentRetry sends again, until the hold's runner has recorded the
// invoice (TestRetriedCreateCutShortByACrash).
func TestAPIRetriedCreateCutShortIsUnavailable(t *testing.T) {
	a := newAPIHarness(t)
	wallet := a.wallet("wallet-a")
	req := a.request(1_000_000)
	req.Owner, req.RequestKey = "wallet-a", "order-9"
	a.cutShortCreate(req)

	p, _, err := wallet.CreatePayment(context.Background(),
		a.payReq(1_000_000, "order-9"))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable ||
		apiErr.Code != client.CodeUnavailable || !client.Retryable(err) {

		t.Fatalf("retried create of a cut-short payment: %+v, %v; want a "+
			"retryable 503 unavailable", p, err)
	}
}
