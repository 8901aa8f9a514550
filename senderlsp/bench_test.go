package senderlsp

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"sync"
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
func BenchmarkReleaseHotPath(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := clock.NewDefaultClock()
	srv := testkit.StartNATS(b)
	bobPriv, bob := testkit.Key(1)
	carolPriv, carol := testkit.Key(2)
	davePriv, dave := testkit.Key(3)
	carolConn := testkit.ConnectLSP(b, srv, carol)
	bobConn := testkit.ConnectLSP(b, srv, bob)

	// Bob's sender role with b.N holds already HELD.
	fake := testkit.NewFakeLnd(clk, carol)
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "bob.db"), Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cfg := DefaultConfig()
	helds := seedHeld(b, store, fake, cfg, bob, carol, dave)
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
	_, x := testkit.Key(20)
	_, y := testkit.Key(21)
	xConn, yConn := testkit.ConnectLSP(b, srv, x), testkit.ConnectLSP(b, srv, y)
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		carolConn.Consume(ctx, func(ctx context.Context, msg bus.Msg) error {
			if msg.Kind == bus.KindHoldOutcome {
				told <- struct{}{}
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
	drained := func(owner onionmsg.NodeKey) {
		st, err := js.Stream(ctx, bus.StreamName(bus.NodeKey(owner)))
		if err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; {
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

// seedHeld stores b.N holds already HELD at bob and at his fake lnd, and
// returns what carol was told of each.
func seedHeld(b *testing.B, store *holdstore.Store, fake *testkit.FakeLnd, cfg Config,
	bob, carol, dave onionmsg.NodeKey) []*onionmsg.HeldHTLCAvailable {

	ctx := context.Background()
	height, _ := fake.CurrentHeight(ctx)
	expiry := height + cfg.HoldCltvDelta
	now := time.Now()
	helds := make([]*onionmsg.HeldHTLCAvailable, b.N)
	for i := range helds {
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
		if _, err := store.Create(ctx, h); err != nil {
			b.Fatal(err)
		}
		if _, err := fake.AddHoldInvoice(ctx, holdInvoiceRequest(h, cfg)); err != nil {
			b.Fatal(err)
		}
		if err := fake.PayHoldInvoice(h.PaymentHash, expiry); err != nil {
			b.Fatal(err)
		}
		if _, err := store.Apply(ctx, holdstore.Transition{ID: h.ID,
			From: holdstore.StateCreated, To: holdstore.StateHeld,
			IncomingExpiry: expiry, DeadlineHeight: cfg.DeadlineHeight(expiry)}); err != nil {
			b.Fatal(err)
		}
		helds[i] = &onionmsg.HeldHTLCAvailable{
			HoldID: onionmsg.HoldID(h.ID), PaymentHash: h.PaymentHash,
			Amount: h.AmountMsat, DeadlineHeight: cfg.DeadlineHeight(expiry),
			DeadlineTime: h.DeadlineTime, SenderLSPKey: bob, ReceiverKey: dave,
			ReleaseSecret: h.ReleaseSecret,
		}
	}
	return helds
}
