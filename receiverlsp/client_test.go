package receiverlsp

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// maker stands in for the receiver's own lnd: it makes invoices as lnd's
// AddInvoice with a route hint through the LSP would.
type maker struct {
	e     *env
	rc    *receiver
	calls int
	fail  int // fail the call with this number (1-based); 0 never
}

func (m *maker) MakeInvoice(ctx context.Context, amount lnwire.MilliSatoshi,
	expiry time.Duration) (string, error) {

	m.calls++
	if m.calls == m.fail {
		return "", errors.New("lnd unreachable")
	}
	return m.e.invoice(m.rc, testkit.InvoiceOpts{Amount: amount, Expiry: expiry}), nil
}

func TestClientRefill(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	mk := &maker{e: e, rc: rc}
	resp, err := rc.client.Refill(e.ctx, mk, 7, 0, 72*time.Hour, 3)
	if err != nil || resp.Accepted != 7 || len(resp.Results) != 7 || resp.Counts.Available != 7 {
		t.Fatalf("refill: %+v, %v", resp, err)
	}
	for i, r := range resp.Results {
		if r.Index != i || !r.Accepted {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	// Invoices too short-lived for the LSP are refused, each with its
	// reason.
	resp, err = rc.client.Refill(e.ctx, mk, 2, 5_000, time.Hour, 0)
	if err != nil || resp.Accepted != 0 || resp.Results[1].Reason != client.RejectShortLived {
		t.Fatalf("short-lived refill: %+v, %v", resp, err)
	}
	// A failing node stops the refill; what was uploaded stays.
	mk.fail = mk.calls + 5
	resp, err = rc.client.Refill(e.ctx, mk, 6, 0, 72*time.Hour, 3)
	if err == nil || resp.Accepted != 3 {
		t.Fatalf("failing maker: %+v, %v", resp, err)
	}
	if c, _ := rc.client.Counts(e.ctx); c.Available != 10 {
		t.Fatalf("counts %+v", c)
	}
	// Without registering, the client says so before asking.
	if _, err := e.receiver(3).client.Mailbox(e.ctx); err == nil {
		t.Fatal("an unregistered client read a mailbox")
	}
}
