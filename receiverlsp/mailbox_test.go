package receiverlsp

import (
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

func TestHeldPaymentsEnterTheMailboxOnce(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 5, 0)
	m := e.hold(0, rc)
	items, err := rc.client.Mailbox(e.ctx)
	if err != nil || len(items) != 1 {
		t.Fatalf("mailbox %+v, %v", items, err)
	}
	it := items[0]
	if it.HoldID != m.HoldID || it.SenderLSP != senderKey(0) || it.ReceiverKey != rc.key ||
		it.PaymentHash != client.Hex32(m.PaymentHash) || it.AmountMsat != m.Amount ||
		it.ReleaseSecret != client.Hex32(m.ReleaseSecret) || it.State != client.StatePending ||
		it.DeadlineHeight != m.DeadlineHeight || !it.DeadlineTime.Equal(m.DeadlineTime) ||
		it.Version != 1 {
		t.Fatalf("item %+v for %+v", it, m)
	}
	e.unchanged("a redelivery", func() {
		if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err != nil {
			t.Fatal(err)
		}
	})
	if len(e.out.Sent()) != 0 {
		t.Fatalf("sent %+v", e.out.Sent())
	}
}

// A held_htlc_available that does not match the invoice reserved for its
// hold is dropped and changes nothing.
func TestMismatchedHeldPaymentsAreDropped(t *testing.T) {
	e := newEnv(t)
	rc, other := e.registered(0, ""), e.registered(1, "")
	e.stock(rc, 5, 0)
	e.stock(other, 5, 0)
	req, reply := e.reserve(0, rc, 50_000)
	good := e.held(0, req, reply)
	_, otherReply := e.reserve(0, other, 50_000)
	variants := map[string]func(m *onionmsg.HeldHTLCAvailable){
		"no reservation":      func(m *onionmsg.HeldHTLCAvailable) { m.HoldID = onionmsg.NewHoldID() },
		"another hash":        func(m *onionmsg.HeldHTLCAvailable) { m.PaymentHash = hashOf(t, otherReply.Invoice) },
		"another amount":      func(m *onionmsg.HeldHTLCAvailable) { m.Amount++ },
		"another receiver":    func(m *onionmsg.HeldHTLCAvailable) { m.ReceiverKey = other.key },
		"names another LSP":   func(m *onionmsg.HeldHTLCAvailable) { m.SenderLSPKey = senderKey(1) },
		"from another sender": nil,
	}
	for name, change := range variants {
		m := *good
		from := senderKey(0)
		if change != nil {
			change(&m)
		} else {
			from, m.SenderLSPKey = senderKey(1), senderKey(1)
		}
		e.unchanged(name, func() {
			err := e.role.acceptHeld(e.ctx, from, &m)
			if !errors.Is(err, lspnet.ErrDrop) {
				t.Fatalf("%s: err = %v, want a drop", name, err)
			}
		})
	}
	// The genuine one still gets in; a later copy with another secret is
	// not a redelivery and is dropped.
	if err := e.role.acceptHeld(e.ctx, senderKey(0), good); err != nil {
		t.Fatal(err)
	}
	e.unchanged("a conflicting copy", func() {
		m := *good
		m.ReleaseSecret[0] ^= 1
		if err := e.role.acceptHeld(e.ctx, senderKey(0), &m); !errors.Is(err, lspnet.ErrDrop) {
			t.Fatalf("err = %v", err)
		}
	})
}

// One sender LSP cannot fill a mailbox: over its share, or over the
// receiver's limit, an item is refused and the sender LSP told at once, and
// a redelivery tells it again without changing anything.
func TestMailboxLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Options.MaxPendingPerReceiver, c.Options.MaxPendingPerSender = 3, 2
	})
	rc := e.registered(0, "")
	e.stock(rc, 10, 0)
	e.hold(0, rc)
	e.hold(0, rc)

	refusedOnce := func(s int) *onionmsg.HeldHTLCAvailable {
		t.Helper()
		req, reply := e.reserve(s, rc, 50_000)
		m := e.held(s, req, reply)
		sent := len(e.out.Sent())
		if err := e.role.acceptHeld(e.ctx, senderKey(s), m); err != nil {
			t.Fatal(err)
		}
		out := e.out.Sent()
		if len(out) != sent+1 {
			t.Fatalf("sender LSP %d not told: %+v", s, out)
		}
		o, ok := out[sent].Msg.(*onionmsg.HoldOutcome)
		if !ok || out[sent].To != senderKey(s) || o.HoldID != m.HoldID ||
			o.PaymentHash != m.PaymentHash || o.Status != onionmsg.StatusRejected ||
			o.Reason != ReasonMailboxFull {
			t.Fatalf("told %+v", out[sent])
		}
		return m
	}
	flood := refusedOnce(0) // over sender 0's share
	e.unchanged("a redelivered refusal", func() {
		if err := e.role.acceptHeld(e.ctx, senderKey(0), flood); err != nil {
			t.Fatal(err)
		}
	})
	if n := len(e.out.Sent()); n != 2 {
		t.Fatalf("the redelivery sent %d outcomes in all, want 2", n)
	}
	e.hold(1, rc)  // another sender LSP still gets in: 3 pending
	refusedOnce(2) // the receiver's mailbox is full

	items, _ := rc.client.Mailbox(e.ctx)
	if len(items) != 3 {
		t.Fatalf("%d pending, want 3", len(items))
	}
	// A refused item is the sender LSP's to cancel: its outcome changes
	// nothing here.
	e.unchanged("an outcome for a refused item", func() {
		err := e.role.applyOutcome(e.ctx, senderKey(0), &onionmsg.HoldOutcome{
			HoldID: flood.HoldID, PaymentHash: flood.PaymentHash,
			Status: onionmsg.StatusCanceled, Reason: "receiver_unreachable"})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// If telling the sender LSP fails, the refusal is kept and the message
// redelivered, which tells it then.
func TestRefusalSurvivesAFailedSend(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Options.MaxPendingPerReceiver, c.Options.MaxPendingPerSender = 1, 1
	})
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	e.hold(0, rc)
	req, reply := e.reserve(0, rc, 50_000)
	m := e.held(0, req, reply)
	e.out.Fail(errors.New("bus down"))
	if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err == nil || errors.Is(err, lspnet.ErrDrop) {
		t.Fatalf("err = %v, want one that redelivers", err)
	}
	e.out.Fail(nil)
	e.unchanged("the redelivery", func() {
		if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err != nil {
			t.Fatal(err)
		}
	})
	if out := e.out.Sent(); len(out) != 1 || out[0].Msg.(*onionmsg.HoldOutcome).Reason != ReasonMailboxFull {
		t.Fatalf("sent %+v", out)
	}
}

func TestItemsExpireByTimeAndHeight(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 5, 0)
	byTime := e.hold(0, rc) // deadline: now + 6h, height 1100
	req, reply := e.reserve(0, rc, 50_000)
	byHeight := e.held(0, req, reply)
	byHeight.DeadlineHeight, byHeight.DeadlineTime = 1010, e.clock.Now().Add(24*time.Hour)
	if err := e.role.acceptHeld(e.ctx, senderKey(0), byHeight); err != nil {
		t.Fatal(err)
	}
	e.run()
	state := func(m *onionmsg.HeldHTLCAvailable) string {
		it, err := rc.client.Item(e.ctx, senderKey(0), m.HoldID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return it.State
	}
	e.height.Set(1010)
	e.advance(31 * time.Second) // a sweep is due
	testkit.Eventually(t, 5*time.Second, "expiry by height", func() bool {
		return state(byHeight) == client.StateExpired
	})
	if state(byTime) != client.StatePending {
		t.Fatal("expired early")
	}
	e.advance(6 * time.Hour)
	// Listed no more at once, expired at the next sweep.
	if items, _ := rc.client.Mailbox(e.ctx); len(items) != 0 {
		t.Fatalf("listed past its deadline: %+v", items)
	}
	testkit.Eventually(t, 5*time.Second, "expiry by time", func() bool {
		return state(byTime) == client.StateExpired
	})
	it, _ := rc.client.Item(e.ctx, senderKey(0), byTime.HoldID, 0, 0)
	if it.Reason != ReasonDeadline || it.Version != 2 {
		t.Fatalf("expired item %+v", it)
	}
	// A held payment that arrives after its deadline is stored expired.
	req, reply = e.reserve(0, rc, 50_000)
	late := e.held(0, req, reply)
	late.DeadlineTime = e.clock.Now().Add(-time.Second)
	if err := e.role.acceptHeld(e.ctx, senderKey(0), late); err != nil {
		t.Fatal(err)
	}
	if state(late) != client.StateExpired {
		t.Fatal("a late arrival is pending")
	}
}

func TestOutcomesReachTheReceiver(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 5, 0)
	m := e.hold(0, rc)
	outcome := func(from int, o onionmsg.HoldOutcome) error {
		o.HoldID = m.HoldID
		if o.PaymentHash == ([32]byte{}) {
			o.PaymentHash = m.PaymentHash
		}
		return e.role.applyOutcome(e.ctx, senderKey(from), &o)
	}
	// A long-poll for any change past version 1 wakes on the outcome.
	got := make(chan *client.Item, 1)
	go func() {
		it, err := rc.client.Item(e.ctx, senderKey(0), m.HoldID, 1, 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- it
	}()
	e.unchanged("outcomes that match nothing", func() {
		for name, err := range map[string]error{
			"from another sender LSP": outcome(1, onionmsg.HoldOutcome{Status: onionmsg.StatusSettled}),
			"another payment hash": outcome(0, onionmsg.HoldOutcome{Status: onionmsg.StatusSettled,
				PaymentHash: [32]byte{1}}),
		} {
			// Not this role's hold: the mux tries the next
			// handler, and drops it if none claims it.
			if !errors.Is(err, lspnet.ErrDrop) && !errors.Is(err, lspnet.ErrNotMine) {
				t.Fatalf("%s: err = %v", name, err)
			}
		}
	})
	if err := outcome(0, onionmsg.HoldOutcome{Status: onionmsg.StatusCanceled,
		Reason: "receiver_unreachable"}); err != nil {
		t.Fatal(err)
	}
	select {
	case it := <-got:
		if it.State != client.StateCanceled || it.Reason != "receiver_unreachable" || it.Version != 2 {
			t.Fatalf("long-poll saw %+v", it)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not wake")
	}
	// Final: a later outcome changes nothing.
	e.unchanged("an outcome after a final one", func() {
		if err := outcome(0, onionmsg.HoldOutcome{Status: onionmsg.StatusSettled}); err != nil {
			t.Fatal(err)
		}
	})
}

// A long-poll ends after its wait, on the role's clock, with the item as it
// is.
func TestLongPollTimesOut(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 2, 0)
	m := e.hold(0, rc)
	got := make(chan *client.Item, 1)
	go func() {
		it, err := rc.client.Item(e.ctx, senderKey(0), m.HoldID, 0, 5*time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- it
	}()
	// The wait is capped at MaxWait (60s): advancing by that ends it.
	testkit.Eventually(t, 5*time.Second, "the long-poll to start waiting", func() bool {
		select {
		case it := <-got:
			t.Fatalf("answered before its wait: %+v", it)
		default:
		}
		e.advance(time.Minute)
		select {
		case it := <-got:
			if it.State != client.StatePending {
				t.Fatalf("item %+v", it)
			}
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
}

// A sender LSP's final outcome may arrive before its held_htlc_available (a
// crash reorders them): it is kept, and the held message, when it comes, is
// stored in that final state, never as pending, with no webhook owed.
func TestOutcomeBeforeHeldIsKept(t *testing.T) {
	for _, c := range []struct {
		status onionmsg.HoldStatus
		reason string
		state  string
	}{
		{onionmsg.StatusCanceled, "deadline_passed", client.StateCanceled},
		{onionmsg.StatusCanceled, "", client.StateCanceled},
		{onionmsg.StatusSettled, "", client.StateSettled},
	} {
		t.Run(c.state+"/"+c.reason, func(t *testing.T) {
			e := newEnv(t)
			rc := e.registered(0, "https://wallet.example/hook")
			e.stock(rc, 5, 0)
			req, reply := e.reserve(0, rc, 50_000)
			m := e.held(0, req, reply)
			o := &onionmsg.HoldOutcome{HoldID: m.HoldID, PaymentHash: m.PaymentHash,
				Status: c.status, Reason: c.reason}
			if err := e.role.applyOutcome(e.ctx, senderKey(0), o); err != nil {
				t.Fatalf("outcome before held: %v", err)
			}
			// Again (a redelivery): the first word stands.
			if err := e.role.applyOutcome(e.ctx, senderKey(0), o); err != nil {
				t.Fatal(err)
			}
			if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err != nil {
				t.Fatalf("held after its outcome: %v", err)
			}
			it, err := rc.client.Item(e.ctx, senderKey(0), m.HoldID, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			want := c.reason
			if c.status == onionmsg.StatusCanceled && want == "" {
				want = ReasonCanceled
			}
			if it.State != c.state || it.Reason != want || it.HoldID != m.HoldID {
				t.Fatalf("item %s %q, want %s %q", it.State, it.Reason, c.state, want)
			}
			if items, err := rc.client.Mailbox(e.ctx); err != nil || len(items) != 0 {
				t.Fatalf("mailbox lists %+v (%v): a finished hold is not pending", items, err)
			}
			owed, err := e.store.WakesOwed(e.ctx)
			if err != nil || len(owed) != 0 {
				t.Fatalf("webhooks owed for a finished hold: %+v, %v", owed, err)
			}
			if n, err := e.pending(rc); err != nil || n != 0 {
				t.Fatalf("%d pending items (%v): a finished hold counts against the mailbox", n, err)
			}
			// A redelivery of the held message changes nothing.
			e.unchanged("a redelivered held_htlc_available", func() {
				if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// Only a final outcome of a hold this LSP reserved an invoice for, with that
// invoice's payment hash, is kept: nobody fills the table with junk.
func TestOutcomesKeptOnlyForReservedHolds(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 5, 0)
	req, reply := e.reserve(0, rc, 50_000)
	m := e.held(0, req, reply)
	e.unchanged("outcomes that concern no reservation", func() {
		for name, c := range map[string]struct {
			from int
			o    onionmsg.HoldOutcome
		}{
			"an unknown hold": {0, onionmsg.HoldOutcome{HoldID: onionmsg.NewHoldID(),
				PaymentHash: m.PaymentHash, Status: onionmsg.StatusCanceled}},
			"another sender LSP's": {1, onionmsg.HoldOutcome{HoldID: m.HoldID,
				PaymentHash: m.PaymentHash, Status: onionmsg.StatusCanceled}},
			"another payment hash": {0, onionmsg.HoldOutcome{HoldID: m.HoldID,
				PaymentHash: [32]byte{7}, Status: onionmsg.StatusSettled}},
			"released, not final": {0, onionmsg.HoldOutcome{HoldID: m.HoldID,
				PaymentHash: m.PaymentHash, Status: onionmsg.StatusReleased}},
			"rejected, not final": {0, onionmsg.HoldOutcome{HoldID: m.HoldID,
				PaymentHash: m.PaymentHash, Status: onionmsg.StatusRejected}},
		} {
			err := e.role.applyOutcome(e.ctx, senderKey(c.from), &c.o)
			if !errors.Is(err, lspnet.ErrDrop) && !errors.Is(err, lspnet.ErrNotMine) {
				t.Fatalf("%s: err = %v, want it dropped or not ours", name, err)
			}
		}
	})
	// The held message then enters as pending, as ever.
	if err := e.role.acceptHeld(e.ctx, senderKey(0), m); err != nil {
		t.Fatal(err)
	}
	if n, err := e.pending(rc); err != nil || n != 1 {
		t.Fatalf("%d pending (%v), want 1", n, err)
	}
}
