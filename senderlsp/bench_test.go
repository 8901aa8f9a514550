package senderlsp

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/routing/route"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkReleaseHotPath measures the release hot path: a valid release,
// sealed by carol beforehand, is published on NATS; bob's consumer gets it,
// the receiver's signature is checked while RELEASED and FORWARDING are
// written, which commit (one fsync) once it has passed, and the outbound
// payment call reaches lnd (a fake that answers at once); the relaying
// LSP's envelope is checked after, before the acknowledgement. In the same
// loop it measures the bare floor: the same publish and JetStream hop to a
// consumer that makes one fsync'd SQLite commit. Reported: p50 and p99 of
// both, and the ratio of the p50s.
//
// held=10000 releases among 10,000 more HELD holds (issue 15's target: p50
// within 1.3x of the floor): a deeper B-tree and more distinct pages per
// commit. Their runners start and announce before the clock starts.
func BenchmarkReleaseHotPath(b *testing.B) {
	for _, extra := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("held=%d", extra), func(b *testing.B) {
			benchReleaseHotPath(b, extra)
		})
	}
}

func benchReleaseHotPath(b *testing.B, extra int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clock.NewDefaultClock()
	srv := testkit.StartNATS(b)
	bobPriv, bob := testkit.Key(1)
	carolPriv, carol := testkit.Key(2)
	davePriv, dave := testkit.Key(3)
	// Carol takes bob's announcements of the extra holds as fast as they
	// come: her default per-peer rate would hold the first rounds' outcomes
	// behind them for a minute.
	carolConn := connectUnlimited(b, srv, carol)
	bobConn := testkit.ConnectLSP(b, srv, bob)
	// The floor's two LSPs connect before bob's runners start: with 10,000
	// held, their announcements keep JetStream too busy to create a stream
	// within ConnectLSP's 10s on a loaded machine.
	_, x := testkit.Key(20)
	_, y := testkit.Key(21)
	xConn, yConn := testkit.ConnectLSP(b, srv, x), testkit.ConnectLSP(b, srv, y)

	// Bob's sender role with b.N holds already HELD.
	fake := testkit.NewFakeLnd(clk, carol)
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "bob.db"), Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := DefaultConfig()
	// Every released payment stays in flight (below): each needs a
	// forwarding slot of its own for the whole benchmark.
	cfg.MaxForwarding = b.N + 1
	helds := seedHeld(b, store, fake, cfg, bob, carol, dave, extra+b.N)[extra:]
	// The payment stays in flight: nothing after the call is measured,
	// and nothing after it (settling) runs into the next round.
	fake.Otherwise(testkit.Outcome{Hang: true})
	// Each path's end is stamped where it happens, not when the
	// benchmark's goroutine next gets a CPU.
	arrived := make(chan time.Time, 1)
	fake.SetHook(func(method, phase string) {
		if method == "SendPayment" && phase == "before" {
			arrived <- time.Now()
		}
	})
	node, err := lspnet.New(lspnet.Config{Transport: bobConn,
		Signer: onionmsg.NewPrivKeySigner(bobPriv), Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg, Deps{Store: store, Lnd: fake, Net: node, Clock: clk,
		Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	mux := lspnet.NewMux()
	m.Register(mux)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); m.Run(ctx) }()
	go func() { defer wg.Done(); node.Run(ctx, mux) }()
	<-m.Running()

	// The floor: x publishes to y, whose consumer makes one durable commit.
	floorStore, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "floor.db"), Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer floorStore.Close()
	if err := floorStore.Update(ctx, func(tx *holdstore.Tx) error {
		_, err := tx.Exec("CREATE TABLE floor (v BLOB)")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	floorDone := make(chan time.Time, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		yConn.Consume(ctx, func(ctx context.Context, msg bus.Msg) error {
			err := floorStore.Update(ctx, func(tx *holdstore.Tx) error {
				_, err := tx.Exec("INSERT INTO floor VALUES (?)", msg.Data[:32])
				return err
			})
			floorDone <- time.Now()
			return err
		})
	}()

	// Bob tells carol "released" after each release: wait for it, so one
	// round's tail does not run into the next.
	told := make(chan struct{}, 1)
	var announced atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		carolConn.Consume(ctx, func(ctx context.Context, msg bus.Msg) error {
			switch msg.Kind {
			case bus.KindHoldOutcome:
				told <- struct{}{}
			case bus.KindHeldHTLCAvailable:
				announced.Add(1)
			}
			return nil
		})
	}()

	// Carol seals every release before the clock starts.
	sealed := make([][]byte, len(helds))
	for i, held := range helds {
		rel := onionmsg.NewRelease(held, clk.Now(), time.Hour)
		if err := rel.Sign(ctx, onionmsg.NewPrivKeySigner(davePriv)); err != nil {
			b.Fatal(err)
		}
		env, err := onionmsg.NewEnvelope(ctx, onionmsg.NewPrivKeySigner(carolPriv),
			carol, bob, onionmsg.MsgID(held.HoldID), clk.Now(), rel)
		if err != nil {
			b.Fatal(err)
		}
		if sealed[i], err = env.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	payload := make([]byte, len(sealed[0]))
	rand.Read(payload)

	// Each round waits, off the clock, until both messages' acks have
	// been processed (JetStream deletes a handled message from a work
	// queue, with its own fsync): one path's tail must not land in the
	// other's measurement.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	drainedWithin := func(owner onionmsg.NodeKey, wait time.Duration) {
		st, err := js.Stream(ctx, bus.StreamName(bus.NodeKey(owner)))
		if err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(wait); ; {
			info, err := st.Info(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if info.State.Msgs == 0 {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d messages not acknowledged", info.State.Msgs)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	drained := func(owner onionmsg.NodeKey) { drainedWithin(owner, 10*time.Second) }

	// Every runner has announced its hold (re-sent at start-up) before the
	// clock starts, so the storm is not measured.
	storm := time.Now()
	for deadline := time.Now().Add(5 * time.Minute); announced.Load() < int64(extra+b.N); {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d holds announced", announced.Load(), extra+b.N)
		}
		time.Sleep(10 * time.Millisecond)
	}
	drainedWithin(carol, 5*time.Minute)
	b.Logf("b.N=%d: %d announced in %v", b.N, extra+b.N, time.Since(storm))

	hot := make([]time.Duration, 0, b.N)
	floor := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var id bus.MsgID
		rand.Read(id[:])
		start := time.Now()
		if err := xConn.Publish(ctx, bus.NodeKey(y), bus.KindHoldOutcome, id, payload); err != nil {
			b.Fatal(err)
		}
		floor = append(floor, (<-floorDone).Sub(start))
		b.StopTimer()
		drained(y)
		b.StartTimer()

		start = time.Now()
		if err := carolConn.Publish(ctx, bus.NodeKey(bob), bus.KindReleaseHeldHTLC,
			bus.MsgID(helds[i].HoldID), sealed[i]); err != nil {
			b.Fatal(err)
		}
		hot = append(hot, (<-arrived).Sub(start))
		b.StopTimer()
		<-told
		drained(bob)
		drained(carol)
		b.StartTimer()
	}
	b.StopTimer()
	p := func(ds []time.Duration, q float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(q*float64(len(s))))].Microseconds())
	}
	b.ReportMetric(p(hot, 0.5), "p50-µs")
	b.ReportMetric(p(hot, 0.99), "p99-µs")
	b.ReportMetric(p(floor, 0.5), "floor-p50-µs")
	b.ReportMetric(p(floor, 0.99), "floor-p99-µs")
	b.ReportMetric(p(hot, 0.5)/p(floor, 0.5), "x-floor")
}

// seedHeld stores n holds already HELD at bob and at his fake lnd, created
// and moved to HELD in batches (the setup is not measured), and returns what
// carol was told of each.
func seedHeld(b testing.TB, store *holdstore.Store, fake *testkit.FakeLnd, cfg Config,
	bob, carol, dave onionmsg.NodeKey, n int) []*onionmsg.HeldHTLCAvailable {

	ctx := context.Background()
	height, _ := fake.CurrentHeight(ctx)
	expiry := height + cfg.HoldCltvDelta
	now := time.Now()
	helds := make([]*onionmsg.HeldHTLCAvailable, n)
	const batch = 1000
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		hs := make([]*holdstore.Hold, 0, end-start)
		for range end - start {
			inv, p := testkit.FakeInvoice(dave, 10_000_000, now, 24*time.Hour)
			h := &holdstore.Hold{
				ID: holdstore.NewID(), PaymentHash: p.Hash(), Owner: "bench",
				AmountMsat: 10_000_000, ReceiverKey: route.Vertex(dave),
				ReceiverLSP: route.Vertex(carol), ReceiverInvoice: inv,
				ReceiverInvoiceExpiry:     now.Add(24 * time.Hour),
				ReceiverInvoiceAmountMsat: 10_000_000,
				CltvDelta:                 cfg.HoldCltvDelta, RetryPolicy: holdstore.RetryPatient,
				DeadlineTime: now.Add(12 * time.Hour),
			}
			rand.Read(h.ReleaseSecret[:])
			hs = append(hs, h)
		}
		if err := store.Update(ctx, func(tx *holdstore.Tx) error {
			for _, h := range hs {
				if _, err := tx.Create(h); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		trs := make([]holdstore.Transition, 0, len(hs))
		for i, h := range hs {
			if _, err := fake.AddHoldInvoice(ctx, holdInvoiceRequest(h, cfg)); err != nil {
				b.Fatal(err)
			}
			if err := fake.PayHoldInvoice(h.PaymentHash, expiry); err != nil {
				b.Fatal(err)
			}
			trs = append(trs, holdstore.Transition{ID: h.ID,
				From: holdstore.StateCreated, To: holdstore.StateHeld,
				IncomingExpiry: expiry, DeadlineHeight: cfg.DeadlineHeight(expiry)})
			helds[start+i] = &onionmsg.HeldHTLCAvailable{
				HoldID: onionmsg.HoldID(h.ID), PaymentHash: h.PaymentHash,
				Amount: h.AmountMsat, DeadlineHeight: cfg.DeadlineHeight(expiry),
				DeadlineTime: h.DeadlineTime, SenderLSPKey: bob, ReceiverKey: dave,
				ReleaseSecret: h.ReleaseSecret,
			}
		}
		res, err := store.ApplyBatch(ctx, trs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	return helds
}

// connectUnlimited is testkit.ConnectLSP without a per-peer rate or queue
// bound, for a consumer that must keep up with a burst.
func connectUnlimited(b *testing.B, srv *bus.Server, key onionmsg.NodeKey) *bus.Conn {
	reg := prometheus.NewRegistry()
	metrics, err := bus.NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, bus.ClientConfig{
		URLs: []string{srv.ClientURL()}, NodeKey: bus.NodeKey(key),
		Metrics: metrics, Logger: testkit.Quiet(),
		ReconnectWait: 50 * time.Millisecond, RequestTimeout: 5 * time.Second,
		PeerRate: 1e9, PeerBurst: 1 << 30, PeerQueue: 1 << 16,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	if err := conn.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	return conn
}
