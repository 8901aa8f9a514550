package testkit_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
)

func newFake(t *testing.T) *testkit.FakeLnd {
	t.Helper()
	_, peer := testkit.Key(1)
	return testkit.NewFakeLnd(clock.NewTestClock(time.Unix(1_700_000_000, 0)), peer)
}

// addPaid adds a hold invoice for hash n and, if paid, accepts an HTLC for
// it; it returns the invoice as LookupInvoice has it.
func addPaid(t *testing.T, f *testkit.FakeLnd, n byte, paid bool) lnd.Invoice {
	t.Helper()
	ctx := context.Background()
	pre := lntypes.Preimage{n}
	hash := pre.Hash()
	added, err := f.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{Hash: hash,
		ValueMsat: 1000, CltvExpiry: 80})
	if err != nil {
		t.Fatal(err)
	}
	if paid {
		if err := f.PayHoldInvoice(hash, 1100); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := f.LookupInvoice(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if inv.AddIndex != added.AddIndex || inv.AddIndex == 0 {
		t.Fatalf("add index %d, AddHoldInvoice said %d", inv.AddIndex,
			added.AddIndex)
	}
	return inv
}

// nextEvent reads one HTLC event, failing after a few seconds.
func nextEvent(t *testing.T, sub *lnd.Subscription[lnd.HtlcEvent]) lnd.HtlcEvent {
	t.Helper()
	select {
	case ev, ok := <-sub.Updates():
		if !ok {
			t.Fatalf("HTLC events ended: %v", sub.Err())
		}
		ev.Time = time.Time{}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no HTLC event")
	}
	panic("unreachable")
}

// TestFakeHtlcEvents: the fake's HTLC events are lnd's (internal/lnd's
// TestRegtest/HtlcEvents): none at accept, LINK_FAILED and FINAL_FAILED on
// a cancel by lnd or by CancelInvoice, SETTLED and FINAL_SETTLED on a
// settle, each on the invoice HTLC's circuit; events while the stream is
// down are lost, and RESUBSCRIBED follows.
func TestFakeHtlcEvents(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	var hooked []string
	var mu sync.Mutex
	f.SetHook(func(method, phase string) {
		if method == "HtlcEvent" {
			mu.Lock()
			hooked = append(hooked, phase)
			mu.Unlock()
		}
	})
	sub, err := f.SubscribeHtlcEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ev := nextEvent(t, sub); ev.Kind != lnd.HtlcSubscribed {
		t.Fatalf("first event %+v", ev)
	}

	byLnd, settled, canceled := addPaid(t, f, 1, true), addPaid(t, f, 2, true),
		addPaid(t, f, 3, true)
	open := addPaid(t, f, 4, false)
	circuits := map[lnd.CircuitKey]bool{}
	for _, inv := range []lnd.Invoice{byLnd, settled, canceled} {
		circuits[inv.HTLCs[0].Circuit()] = true
	}
	if len(circuits) != 3 {
		t.Fatalf("HTLCs share circuits: %v", circuits)
	}

	f.CancelByLnd(byLnd.Hash)
	if err := f.SettleInvoice(ctx, lntypes.Preimage{2}); err != nil {
		t.Fatal(err)
	}
	if err := f.CancelInvoice(ctx, open.Hash); err != nil { // no HTLC
		t.Fatal(err)
	}
	if err := f.CancelInvoice(ctx, canceled.Hash); err != nil {
		t.Fatal(err)
	}
	c1, c2, c3 := byLnd.HTLCs[0].Circuit(), settled.HTLCs[0].Circuit(),
		canceled.HTLCs[0].Circuit()
	want := []lnd.HtlcEvent{
		{Kind: lnd.HtlcLinkFailed, Circuit: c1, FailureDetail: "INVOICE_CANCELED"},
		{Kind: lnd.HtlcFinalFailed, Circuit: c1, Offchain: true},
		{Kind: lnd.HtlcSettled, Circuit: c2},
		{Kind: lnd.HtlcFinalSettled, Circuit: c2, Offchain: true},
		{Kind: lnd.HtlcLinkFailed, Circuit: c3, FailureDetail: "INVOICE_CANCELED"},
		{Kind: lnd.HtlcFinalFailed, Circuit: c3, Offchain: true},
	}
	for i, w := range want {
		if ev := nextEvent(t, sub); ev != w {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
	}
	inv, _ := f.Invoice(byLnd.Hash)
	if inv.State != lnd.InvoiceCanceled || inv.HTLCs[0].State != lnd.HTLCCanceled {
		t.Fatalf("canceled by lnd: %v, HTLC %v", inv.State, inv.HTLCs[0].State)
	}

	// Down: a cancel is lost. Up: the marker, then events again.
	lost, later := addPaid(t, f, 5, true), addPaid(t, f, 6, true)
	f.HtlcEventsDown()
	f.CancelByLnd(lost.Hash)
	f.HtlcEventsUp()
	f.CancelByLnd(later.Hash)
	if ev := nextEvent(t, sub); ev.Kind != lnd.HtlcResubscribed {
		t.Fatalf("after the break: %+v", ev)
	}
	if ev := nextEvent(t, sub); ev.Kind != lnd.HtlcLinkFailed ||
		ev.Circuit != later.HTLCs[0].Circuit() {
		t.Fatalf("after the marker: %+v", ev)
	}
	nextEvent(t, sub)

	mu.Lock()
	defer mu.Unlock()
	if len(hooked) != 9 || hooked[0] != "LINK_FAILED" || hooked[6] != "RESUBSCRIBED" {
		t.Fatalf("hook saw %v", hooked)
	}
}

// TestFakeListPendingInvoices: pages in add index order, without the
// settled and canceled invoices; the add and HTLC indexes survive Persist
// and LoadFakeLnd.
func TestFakeListPendingInvoices(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	var all []lnd.Invoice
	for i := range 7 {
		all = append(all, addPaid(t, f, byte(i+1), i%2 == 0))
	}
	f.CancelByLnd(all[2].Hash)
	if err := f.SettleInvoice(ctx, lntypes.Preimage{5}); err != nil { // all[4]
		t.Fatal(err)
	}
	if _, err := f.ListPendingInvoices(ctx, 0, 0); !errors.Is(err, lnd.ErrInvalidRequest) {
		t.Fatalf("limit 0: %v", err)
	}

	var got []uint64
	after := all[0].AddIndex // from the second on
	for {
		page, err := f.ListPendingInvoices(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, inv := range page {
			got = append(got, inv.AddIndex)
			after = inv.AddIndex
		}
		if len(page) < 2 {
			break
		}
	}
	want := []uint64{all[1].AddIndex, all[3].AddIndex, all[5].AddIndex, all[6].AddIndex}
	if len(got) != len(want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pending %v, want %v", got, want)
		}
	}

	path := filepath.Join(t.TempDir(), "lnd.json")
	if err := f.Persist(path); err != nil {
		t.Fatal(err)
	}
	g, err := testkit.LoadFakeLnd(clock.NewDefaultClock(), path)
	if err != nil {
		t.Fatal(err)
	}
	next := addPaid(t, g, 99, true)
	last := all[6]
	if next.AddIndex != last.AddIndex+1 {
		t.Fatalf("add index after reload %d, want %d", next.AddIndex, last.AddIndex+1)
	}
	if next.HTLCs[0].HTLCIndex != all[6].HTLCs[0].HTLCIndex+1 {
		t.Fatalf("HTLC index after reload %d, want %d",
			next.HTLCs[0].HTLCIndex, all[6].HTLCs[0].HTLCIndex+1)
	}
}

// TestFakeInFlight: calls made at once overlap under a latency and show
// in the peak; a caller that bounds its calls shows its bound.
func TestFakeInFlight(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	hash := addPaid(t, f, 1, true).Hash
	f.SetLatency(20 * time.Millisecond)

	lookups := func(n, limit int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, limit)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if _, err := f.LookupInvoice(ctx, hash); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}

	f.ResetMaxInFlight()
	lookups(64, 4)
	if now, peak := f.InFlight(); now != 0 || peak > 4 || peak < 1 {
		t.Fatalf("bounded to 4: %d now, peak %d", now, peak)
	}
	f.ResetMaxInFlight()
	lookups(64, 64)
	if now, peak := f.InFlight(); now != 0 || peak <= 4 {
		t.Fatalf("64 at once: %d now, peak %d", now, peak)
	}
	if n := f.Calls("LookupInvoice"); n != 129 {
		t.Fatalf("%d lookups counted, want 129", n)
	}
}
