package receiverlsp

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lnwire"
)

func TestInvoiceRequestPicksAndReserves(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Options.MinAmount, c.Options.MaxAmount = 1_000, 1_000_000
	})
	rc := e.registered(0, "")
	now := e.clock.Now()
	soon := e.invoice(rc, testkit.InvoiceOpts{Expiry: 30 * time.Hour})
	later := e.invoice(rc, testkit.InvoiceOpts{Expiry: 60 * time.Hour})
	fixed := e.invoice(rc, testkit.InvoiceOpts{Amount: 7_000_000})
	if _, err := rc.client.Upload(e.ctx, []string{soon, later, fixed}); err != nil {
		t.Fatal(err)
	}
	ask := func(s int, hold onionmsg.HoldID, amt lnwire.MilliSatoshi, minExpiry time.Duration) *onionmsg.InvoiceReply {
		t.Helper()
		reply, err := e.role.answerInvoiceRequest(e.ctx, senderKey(s),
			request(rc, hold, amt, now.Add(minExpiry)))
		if err != nil {
			t.Fatal(err)
		}
		if reply.HoldID != hold {
			t.Fatalf("reply for hold %s, asked for %s", reply.HoldID, hold)
		}
		return reply
	}
	wantCode := func(what string, r *onionmsg.InvoiceReply, code onionmsg.ReplyErrorCode) {
		t.Helper()
		if r.Invoice != "" || r.ErrorCode != code || r.ErrorMessage == "" {
			t.Fatalf("%s: %+v, want code %s", what, r, code)
		}
	}

	// Out of the amountless range, and no fixed invoice of that amount.
	wantCode("too much", ask(0, onionmsg.HoldID{1}, 2_000_000, time.Hour), onionmsg.ReplyAmountOutOfRange)
	wantCode("too little", ask(0, onionmsg.HoldID{1}, 999, time.Hour), onionmsg.ReplyAmountOutOfRange)
	// A fixed invoice of exactly the amount, even outside the range.
	if r := ask(0, onionmsg.HoldID{2}, 7_000_000, time.Hour); r.Invoice != fixed {
		t.Fatalf("fixed: %+v", r)
	}
	// Amountless: the one that expires first among those that last long
	// enough.
	if r := ask(0, onionmsg.HoldID{3}, 50_000, 40*time.Hour); r.Invoice != later {
		t.Fatalf("40h: got %+v, want the 60h invoice", r)
	}
	wantCode("none left that lasts 40h", ask(1, onionmsg.HoldID{4}, 50_000, 40*time.Hour),
		onionmsg.ReplyNoInvoicesLeft)
	if r := ask(1, onionmsg.HoldID{4}, 50_000, time.Hour); r.Invoice != soon {
		t.Fatalf("1h: %+v", r)
	}
	wantCode("all handed out", ask(1, onionmsg.HoldID{5}, 50_000, time.Hour),
		onionmsg.ReplyNoInvoicesLeft)
	// A retry gets the same invoice, even with nothing left.
	if r := ask(0, onionmsg.HoldID{3}, 50_000, 40*time.Hour); r.Invoice != later {
		t.Fatalf("retry: %+v", r)
	}
	// The same hold id from another sender LSP is another hold.
	wantCode("other LSP, same hold id", ask(2, onionmsg.HoldID{3}, 50_000, time.Hour),
		onionmsg.ReplyNoInvoicesLeft)
	// Reusing a hold id for another amount is refused, and changes nothing.
	e.unchanged("a reused hold id", func() {
		_, err := e.role.answerInvoiceRequest(e.ctx, senderKey(0),
			request(rc, onionmsg.HoldID{3}, 60_000, now.Add(time.Hour)))
		if !errors.Is(err, errHoldReused) {
			t.Fatalf("err = %v", err)
		}
	})
	stranger := e.receiver(9)
	e.unchanged("an unknown receiver", func() {
		r, err := e.role.answerInvoiceRequest(e.ctx, senderKey(0),
			request(stranger, onionmsg.HoldID{9}, 50_000, now.Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		wantCode("unknown receiver", r, onionmsg.ReplyUnknownReceiver)
	})
	c, _ := rc.client.Counts(e.ctx)
	if c.Available != 0 || c.Reserved != 3 {
		t.Fatalf("counts %+v", c)
	}
}

// Many sender LSPs ask for invoices of one receiver at once, each retrying
// its request: no invoice is handed out twice, every retry gets its hold's
// invoice, and handed out plus left is what was uploaded.
func TestConcurrentInvoiceRequests(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	const stocked, senders, holdsEach = 60, 8, 10 // 80 holds for 60 invoices
	e.stock(rc, stocked, 0)

	type result struct {
		sender  int
		hold    onionmsg.HoldID
		invoice string
	}
	var (
		mu      sync.Mutex
		results []result
		empty   int
		wg      sync.WaitGroup
	)
	for s := range senders {
		for h := range holdsEach {
			wg.Go(func() {
				hold := onionmsg.HoldID{byte(s), byte(h)}
				req := request(rc, hold, 10_000, e.clock.Now().Add(time.Hour))
				var first string
				for try := range 3 { // the request, then two retries
					reply, err := e.role.answerInvoiceRequest(e.ctx, senderKey(s), req)
					if err != nil {
						t.Error(err)
						return
					}
					if try == 0 {
						first = reply.Invoice
					} else if reply.Invoice != first {
						t.Errorf("hold %s: retry got %q, first %q", hold, reply.Invoice, first)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if first == "" {
					empty++
					return
				}
				results = append(results, result{s, hold, first})
			})
		}
	}
	wg.Wait()
	seen := map[string]result{}
	for _, r := range results {
		if prev, dup := seen[r.invoice]; dup {
			t.Fatalf("invoice handed out twice: to %d/%s and %d/%s",
				prev.sender, prev.hold, r.sender, r.hold)
		}
		seen[r.invoice] = r
	}
	c, err := rc.client.Counts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != stocked || empty != senders*holdsEach-stocked ||
		c.Reserved != len(seen) || c.Available+c.Reserved != stocked {
		t.Fatalf("handed out %d, empty-handed %d, counts %+v; stocked %d",
			len(seen), empty, c, stocked)
	}
	// And the store agrees on who got what.
	for inv, r := range seen {
		got, err := e.store.InvoiceByHash(e.ctx, hashOf(t, inv))
		if err != nil || got.Reservation == nil ||
			got.Reservation.SenderLSP != vertex(senderKey(r.sender)) ||
			got.Reservation.HoldID != holdstore.ID(r.hold) {
			t.Fatalf("invoice %s stored as %+v, %v", inv, got, err)
		}
	}
}
