package holdstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// benchPreimage is a cheap, distinct preimage per index (crypto/rand is not
// what these benchmarks measure).
func benchPreimage(seed uint64, i int) lntypes.Preimage {
	var p lntypes.Preimage
	binary.BigEndian.PutUint64(p[:8], seed)
	binary.BigEndian.PutUint64(p[8:16], uint64(i))
	return p
}

// seedHolds creates n CREATED holds, 5,000 per transaction, and returns their
// ids.
func seedHolds(tb testing.TB, s *Store, n int, seed uint64) []ID {
	tb.Helper()
	ids := make([]ID, n)
	for start := 0; start < n; start += 5000 {
		end := min(start+5000, n)
		err := s.Update(context.Background(), func(tx *Tx) error {
			for i := start; i < end; i++ {
				h := testHold(benchPreimage(seed, i))
				ids[i] = h.ID
				if _, err := tx.Create(h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

func held(id ID) Transition {
	return Transition{ID: id, From: StateCreated, To: StateHeld,
		IncomingExpiry: 1200, DeadlineHeight: 1100}
}

// BenchmarkTransitionDurable: one transition per transaction, each durable
// (fsync) before the next starts. Target: at least 1,000/s.
func BenchmarkTransitionDurable(b *testing.B) {
	s, _ := openTest(b)
	ids := seedHolds(b, s, b.N, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := s.Apply(ctx, held(ids[i])); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
}

// BenchmarkTransitionGroupCommit: transitions in bursts, many per transaction.
// Target: at least 10,000/s.
func BenchmarkTransitionGroupCommit(b *testing.B) {
	b.Run("batch=100", func(b *testing.B) {
		s, _ := openTest(b)
		ids := seedHolds(b, s, b.N, 2)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i += 100 {
			batch := make([]Transition, 0, 100)
			for j := i; j < min(i+100, b.N); j++ {
				batch = append(batch, held(ids[j]))
			}
			res, err := s.ApplyBatch(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
	})
	// Concurrent callers of Apply, each waiting for its own durable commit:
	// the writer groups whatever queued while it was committing.
	b.Run("concurrent=64", func(b *testing.B) {
		s, _ := openTest(b)
		ids := seedHolds(b, s, b.N, 3)
		ctx := context.Background()
		work := make(chan ID, b.N)
		for _, id := range ids {
			work <- id
		}
		close(work)
		b.ReportAllocs()
		b.ResetTimer()
		start, cpu0 := time.Now(), cpuTime()
		var wg sync.WaitGroup
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					if _, err := s.Apply(ctx, held(id)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// cpuTime is the CPU time the process has used, user and system: what a
// transition costs, where wall time on a shared machine says as much about
// the other tenants.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fixture is a store of n holds built once per process and reused by every
// run of a benchmark (they only read it).
type fixture struct {
	once sync.Once
	s    *Store
	ids  []ID
	err  error
}

var fixtures sync.Map // n -> *fixture

func bigStore(b *testing.B, n int) (*Store, []ID) {
	f, _ := fixtures.LoadOrStore(n, &fixture{})
	fx := f.(*fixture)
	fx.once.Do(func() {
		dir, err := os.MkdirTemp("", "holdstore-bench-")
		if err != nil {
			fx.err = err
			return
		}
		// Left open for the life of the process; the OS cleans the
		// temp dir's handle up at exit.
		fx.s, fx.err = Open(context.Background(), Config{
			Path: filepath.Join(dir, fmt.Sprintf("%d.db", n)),
		})
		if fx.err == nil {
			fx.ids = seedHolds(b, fx.s, n, uint64(n))
		}
	})
	if fx.err != nil {
		b.Fatal(fx.err)
	}
	return fx.s, fx.ids
}

// BenchmarkRecoveryLoad100k: load every unresolved hold of a store of
// 100,000 non-final holds, as start-up does. Target: at most 1 s.
func BenchmarkRecoveryLoad100k(b *testing.B) {
	s, _ := bigStore(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		holds, err := s.Unresolved(ctx)
		if err != nil || len(holds) != 100_000 {
			b.Fatalf("%d holds, %v", len(holds), err)
		}
	}
}

// BenchmarkGetByHash1M: look up one hold by payment hash in a store of
// 1,000,000 holds. Target: under 1 ms.
func BenchmarkGetByHash1M(b *testing.B) {
	const n = 1_000_000
	s, ids := bigStore(b, n)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := (i * 7919) % n
		p := benchPreimage(n, k)
		h, err := s.GetByHash(ctx, p.Hash())
		if err != nil || h.ID != ids[k] {
			b.Fatalf("lookup %d: %v", k, err)
		}
	}
}

// BenchmarkCountPending is the receiver role's mailbox limit check of
// every held_htlc_available it admits: the receiver's pending items, and
// the sender LSP's share of them, with that many pending already.
func BenchmarkCountPending(b *testing.B) {
	for _, pending := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("pending=%d", pending), func(b *testing.B) {
			s, _ := openTest(b)
			ctx := context.Background()
			key, lsp := registered(b, s, 1), vertex(0xa)
			err := s.Update(ctx, func(tx *Tx) error {
				for i := range pending {
					inv := invoiceOf(key, 0, 0, testStart.Add(48*time.Hour))
					binary.BigEndian.PutUint32(inv.PaymentHash[2:], uint32(i))
					if _, err := tx.AddInvoice(inv); err != nil {
						return err
					}
					var hold ID
					binary.BigEndian.PutUint32(hold[:], uint32(i))
					if _, err := tx.ReserveFirst(key, 0, testStart, lsp, hold, 1000); err != nil {
						return err
					}
					if err := tx.AddMailboxItem(heldItem(inv, lsp, hold)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				err := s.Update(ctx, func(tx *Tx) error {
					n, err := tx.CountPending(key, nil)
					if err == nil && n != pending {
						err = fmt.Errorf("%d pending, want %d", n, pending)
					}
					if err == nil {
						_, err = tx.CountPending(key, &lsp)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
