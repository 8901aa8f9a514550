package testkit

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
)

// What FakeLnd offers for tracking many holds without a stream each: the
// node-wide HTLC event stream, the paged listing of pending invoices, and
// a count of the calls in flight.

// SubscribeHtlcEvents is the adapter's node-wide HTLC event stream: first
// HtlcSubscribed, then the events of invoice HTLCs settled or canceled
// from then on (no backlog). The hook runs at ("HtlcEvent", "<KIND>")
// before each delivery, e.g. "LINK_FAILED".
func (f *FakeLnd) SubscribeHtlcEvents(ctx context.Context) (*lnd.Subscription[lnd.HtlcEvent], error) {
	defer f.call()()
	f.mu.Lock()
	err := f.enter("SubscribeHtlcEvents")
	pos := len(f.htlcLog)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}

	sub, feed := lnd.NewFeed[lnd.HtlcEvent](ctx)
	go func() {
		if !feed.Send(lnd.HtlcEvent{Kind: lnd.HtlcSubscribed}) {
			feed.End(context.Canceled)
			return
		}
		for {
			f.mu.Lock()
			batch := slices.Clone(f.htlcLog[pos:])
			changed := f.htlcChanged
			f.mu.Unlock()
			for _, ev := range batch {
				f.mu.Lock()
				f.at("HtlcEvent", ev.Kind.String())
				f.mu.Unlock()
				if !feed.Send(ev) {
					feed.End(context.Canceled)
					return
				}
			}
			pos += len(batch)
			select {
			case <-changed:
			case <-feed.Done():
				feed.End(context.Canceled)
				return
			}
		}
	}()
	return sub, nil
}

// emitHtlc appends events for the HTLC event streams, unless they are
// down; f.mu is held.
func (f *FakeLnd) emitHtlc(evs ...lnd.HtlcEvent) {
	if f.htlcDown {
		return
	}
	f.htlcLog = append(f.htlcLog, evs...)
	close(f.htlcChanged)
	f.htlcChanged = make(chan struct{})
}

// HtlcEventsDown breaks the HTLC event streams, as an lnd restart does:
// the events until HtlcEventsUp are lost.
func (f *FakeLnd) HtlcEventsDown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.htlcDown = true
}

// HtlcEventsUp ends HtlcEventsDown: every HTLC event stream delivers
// HtlcResubscribed, as the adapter does once it subscribed again.
func (f *FakeLnd) HtlcEventsUp() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.htlcDown = false
	f.emitHtlc(lnd.HtlcEvent{Kind: lnd.HtlcResubscribed})
}

// ListPendingInvoices returns, in AddIndex order, up to limit of the OPEN
// and ACCEPTED hold invoices above afterAddIndex, as the adapter does.
func (f *FakeLnd) ListPendingInvoices(ctx context.Context, afterAddIndex uint64, limit uint32) ([]lnd.Invoice, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListPendingInvoices"); err != nil {
		return nil, err
	}
	if limit == 0 {
		return nil, fmt.Errorf("fake ListPendingInvoices: %w: limit must be positive", lnd.ErrInvalidRequest)
	}
	// Invoices are only ever added: the index in AddIndex order is
	// rebuilt when one was, so a page costs what lnd's does (a seek and
	// a scan), not a sort of every invoice.
	if len(f.byAddIndex) != len(f.invoices) {
		f.byAddIndex = f.byAddIndex[:0]
		for _, inv := range f.invoices {
			f.byAddIndex = append(f.byAddIndex, inv)
		}
		slices.SortFunc(f.byAddIndex, func(a, b *lnd.Invoice) int {
			return cmp.Compare(a.AddIndex, b.AddIndex)
		})
	}
	i, _ := slices.BinarySearchFunc(f.byAddIndex, afterAddIndex+1,
		func(inv *lnd.Invoice, idx uint64) int { return cmp.Compare(inv.AddIndex, idx) })
	var out []lnd.Invoice
	for ; i < len(f.byAddIndex) && len(out) < int(limit); i++ {
		if inv := f.byAddIndex[i]; !inv.State.IsFinal() {
			out = append(out, snapshotInvoice(inv))
		}
	}
	return out, nil
}

// call counts an RPC in flight until the returned function runs, after
// the latency SetLatency set.
func (f *FakeLnd) call() func() {
	n := f.inFlight.Add(1)
	for {
		peak := f.maxInFlight.Load()
		if n <= peak || f.maxInFlight.CompareAndSwap(peak, n) {
			break
		}
	}
	if d := time.Duration(f.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	return func() { f.inFlight.Add(-1) }
}

// SetLatency makes every RPC take d of real time before it runs, as a
// remote lnd's do, so calls made at once overlap (InFlight).
func (f *FakeLnd) SetLatency(d time.Duration) {
	f.latency.Store(int64(d))
}

// InFlight returns how many RPCs are under way now and the most that were
// at once (since ResetMaxInFlight). A subscription counts while its call
// opens it, not while it runs.
func (f *FakeLnd) InFlight() (now, peak int) {
	return int(f.inFlight.Load()), int(f.maxInFlight.Load())
}

// ResetMaxInFlight starts the peak of InFlight again from the calls under
// way now.
func (f *FakeLnd) ResetMaxInFlight() {
	f.maxInFlight.Store(f.inFlight.Load())
}
