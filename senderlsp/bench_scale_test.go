package senderlsp

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/clock"
)

// BenchmarkHeldAtScale simulates the sender role holding 10,000 and
// 100,000 payments on the fake lnd (issue 15): how its own cost grows
// beyond what one regtest lnd can hold. Each run seeds the holds HELD in a
// real SQLite file, then starts the role as after a crash and reports:
//
//   - tracked-ms: from Run to every hold tracked again (Tracked);
//   - lnd-calls: the calls that took, and peak-in-flight, the most at once;
//   - heap-B/held: Go heap in use after a GC, with every hold parked, less
//     the same before the role started, per held payment;
//   - goroutines: the role's goroutines with every hold parked (a
//     constant, not per hold);
//   - deadline-µs: one deadline check (a block) with nothing due;
//   - event-µs: one HTLC event of the node, not one of the holds'.
//
// b.N repeats the two per-event figures. Run it with
// go test -run '^$' -bench HeldAtScale -benchtime 1000x ./senderlsp
func BenchmarkHeldAtScale(b *testing.B) {
	for _, held := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			benchHeldAtScale(b, held)
		})
	}
}

func benchHeldAtScale(b *testing.B, held int) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := clock.NewDefaultClock()
	_, bob := testkit.Key(1)
	_, carol := testkit.Key(2)
	_, dave := testkit.Key(3)
	_, alice := testkit.Key(4)
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "bob.db"), Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fake := &htlcLnd{FakeLnd: testkit.NewFakeLnd(clk, carol)}
	cfg := DefaultConfig()
	seedHeldMany(b, store, fake, cfg, held, carol, dave, alice)
	// Acknowledged before the crash: recovery re-announces none.
	if err := markAllAnnounced(ctx, store); err != nil {
		b.Fatal(err)
	}

	m, err := New(cfg, Deps{Store: store, Lnd: fake, Clock: clk, Logger: testkit.Quiet(),
		Net: &invoiceNet{self: bob, dave: dave, clock: clk}})
	if err != nil {
		b.Fatal(err)
	}
	before := heapInUse()
	goroutinesBefore := runtime.NumGoroutine()
	fake.SetLatency(200 * time.Microsecond) // a local lnd's round trip
	fake.ResetMaxInFlight()
	calls := lndCalls(fake.FakeLnd)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	start := time.Now()
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(ctx) }()
	<-m.Tracked()
	tracked := time.Since(start)
	_, peak := fake.InFlight()
	took := lndCalls(fake.FakeLnd) - calls
	fake.SetLatency(0)
	testkit.Eventually(b, time.Minute, "every hold parked", func() bool {
		return value(m.metrics.runners) == 0
	})
	perHeld := float64(heapInUse()-before) / float64(held)
	goroutines := runtime.NumGoroutine() - goroutinesBefore

	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		m.checkDeadlines(ctx)
	}
	deadline := time.Since(t0)
	t0 = time.Now()
	for i := 0; i < b.N; i++ {
		m.onHTLCEvent(lnd.HtlcEvent{Kind: lnd.HtlcLinkFailed,
			Circuit: lnd.CircuitKey{ChanID: 7, HTLCIndex: uint64(i)}})
	}
	event := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(tracked.Milliseconds()), "tracked-ms")
	b.ReportMetric(float64(took), "lnd-calls")
	b.ReportMetric(float64(peak), "peak-in-flight")
	b.ReportMetric(perHeld, "heap-B/held")
	b.ReportMetric(float64(goroutines), "goroutines")
	b.ReportMetric(float64(deadline.Microseconds())/float64(b.N), "deadline-µs")
	b.ReportMetric(float64(event.Nanoseconds())/1e3/float64(b.N), "event-µs")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func lndCalls(f *testkit.FakeLnd) int {
	n := 0
	for _, m := range []string{"LookupInvoice", "ListPendingInvoices",
		"SubscribeSingleInvoice", "SubscribeHtlcEvents", "TrackPayment"} {
		n += f.Calls(m)
	}
	return n
}

// markAllAnnounced records every HELD hold as acknowledged.
func markAllAnnounced(ctx context.Context, s *holdstore.Store) error {
	for {
		p, err := s.Unannounced(ctx, "", 1000)
		if err != nil || len(p.Holds) == 0 {
			return err
		}
		ids := make([]holdstore.ID, len(p.Holds))
		for i, h := range p.Holds {
			ids[i] = h.ID
		}
		if err := s.MarkAnnounced(ctx, ids...); err != nil {
			return err
		}
	}
}
