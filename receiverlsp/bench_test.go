package receiverlsp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lntypes"
)

// seedInvoices stores n available invoices of rc straight into the store
// (the upload's checks are not what these benchmarks measure).
func seedInvoices(b *testing.B, e *env, rc *receiver, n int) {
	b.Helper()
	expires := e.clock.Now().Add(48 * time.Hour)
	for start := 0; start < n; start += 5000 {
		err := e.store.Update(e.ctx, func(tx *holdstore.Tx) error {
			for i := start; i < min(start+5000, n); i++ {
				var hash lntypes.Hash
				binary.BigEndian.PutUint64(hash[:], uint64(i))
				_, err := tx.AddInvoice(&holdstore.ReceiverInvoice{
					PaymentHash: hash, ReceiverKey: vertex(rc.key),
					Invoice: fmt.Sprintf("lnbcrt1bench%016x", i), ExpiresAt: expires,
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// holdIDs hands out distinct hold ids to parallel benchmark goroutines.
type holdIDs struct{ n atomic.Uint64 }

func (h *holdIDs) next() onionmsg.HoldID {
	var id onionmsg.HoldID
	binary.BigEndian.PutUint64(id[:], h.n.Add(1))
	return id
}

// BenchmarkInvoiceRequest answers invoice_request on the handler, each
// answer's reservation committed (fsync'd) before it returns, with several
// requests in flight as the bus's request workers would have.
func BenchmarkInvoiceRequest(b *testing.B) {
	for _, inflight := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			e := newEnv(b)
			rc := e.registered(0, "")
			seedInvoices(b, e, rc, b.N+1)
			minExpiry := e.clock.Now().Add(time.Hour)
			var ids holdIDs
			sender := senderKey(0)
			ask := func() {
				reply, err := e.role.answerInvoiceRequest(e.ctx, sender,
					request(rc, ids.next(), 10_000, minExpiry))
				if err != nil || reply.Invoice == "" {
					b.Errorf("%+v, %v", reply, err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			inParallel(b, inflight, ask)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkInvoiceRequestOverTheBus is the same over real in-process NATS:
// a sender LSP's lspnet Request, the envelope signed and checked both ways,
// and the reservation committed before the answer.
func BenchmarkInvoiceRequestOverTheBus(b *testing.B) {
	for _, inflight := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			ne := newNATSEnv(b, 1)
			e := ne.env
			rc := e.registered(0, "")
			seedInvoices(b, e, rc, b.N+1)
			minExpiry := e.clock.Now().Add(time.Hour)
			// Wait for the responders.
			if _, err := ne.ask(0, request(rc, onionmsg.NewHoldID(), 10_000, minExpiry)); err != nil {
				b.Fatal(err)
			}
			var ids holdIDs
			ask := func() {
				reply, err := ne.ask(0, request(rc, ids.next(), 10_000, minExpiry))
				if err != nil || reply.Invoice == "" {
					b.Errorf("%+v, %v", reply, err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			inParallel(b, inflight, ask)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// inParallel runs op b.N times with inflight calls at a time.
func inParallel(b *testing.B, inflight int, op func()) {
	if inflight == 1 {
		for i := 0; i < b.N; i++ {
			op()
		}
		return
	}
	// RunParallel starts GOMAXPROCS * parallelism goroutines.
	b.SetParallelism(max(1, inflight/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op()
		}
	})
}
