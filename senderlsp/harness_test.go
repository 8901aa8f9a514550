package senderlsp

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

var start = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// harness runs bob's sender role on a fake lnd and a real SQLite file, with
// carol, a stub receiver LSP, on the same in-process NATS. dave is the
// receiver; his key signs releases.
type harness struct {
	t     testing.TB
	clock *clock.TestClock
	lnd   *testkit.FakeLnd
	store *holdstore.Store
	dbDir string
	cfg   Config
	srv   *bus.Server

	bob, carol, dave onionmsg.NodeKey
	bobNode          *lspnet.Node
	bobConn          *testkit.Conn
	carolNode        *lspnet.Node
	davePriv         *btcec.PrivateKey

	m    *Manager
	stop func()

	// outcomesDown makes bob's hold_outcome sends fail, as if carol's
	// stream were unreachable.
	outcomesDown atomic.Bool
	// heldDown makes bob's held_htlc_available sends fail likewise.
	heldDown atomic.Bool
	// invoicesDown makes carol answer invoice requests "unavailable", as
	// a receiver LSP that cannot serve them does.
	invoicesDown atomic.Bool

	// timers counts the timers registered on the test clock, by
	// duration, and seen how many of them a test has waited for.
	timerMu sync.Mutex
	timers  map[time.Duration]int
	seen    map[time.Duration]int

	mu       sync.Mutex
	held     map[onionmsg.HoldID]*onionmsg.HeldHTLCAvailable
	outcomes map[onionmsg.HoldID][]*onionmsg.HoldOutcome
	// invoice answers carol's invoice requests; by default a fresh fixed
	// invoice of dave for the amount, valid 24 hours.
	invoice func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply
}

func defaultTestConfig() Config {
	cfg := DefaultConfig()
	cfg.QuickRetries = []time.Duration{time.Second, 5 * time.Second}
	return cfg
}

func newHarness(t testing.TB, tune ...func(*Config)) *harness {
	t.Helper()
	cfg := defaultTestConfig()
	for _, f := range tune {
		f(&cfg)
	}
	ticks := make(chan time.Duration, 4096)
	clk := clock.NewTestClockWithTickSignal(start, ticks)
	srv := testkit.StartNATS(t)
	bobPriv, bob := testkit.Key(1)
	carolPriv, carol := testkit.Key(2)
	davePriv, dave := testkit.Key(3)
	h := &harness{
		t: t, clock: clk, cfg: cfg, srv: srv, bob: bob, carol: carol, dave: dave,
		davePriv: davePriv, dbDir: t.TempDir(),
		lnd:      testkit.NewFakeLnd(clk, carol),
		held:     map[onionmsg.HoldID]*onionmsg.HeldHTLCAvailable{},
		outcomes: map[onionmsg.HoldID][]*onionmsg.HoldOutcome{},
		timers:   map[time.Duration]int{},
		seen:     map[time.Duration]int{},
	}
	stopTicks := make(chan struct{})
	go func() {
		for {
			select {
			case d := <-ticks:
				h.timerMu.Lock()
				h.timers[d]++
				h.timerMu.Unlock()
			case <-stopTicks:
				return
			}
		}
	}()
	t.Cleanup(func() { close(stopTicks) })
	h.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		inv, _ := h.lnd.ReceiverInvoice(dave, req.Amount, 24*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	node := func(priv *btcec.PrivateKey, key onionmsg.NodeKey) (*lspnet.Node, *testkit.Conn) {
		conn := testkit.ConnectLSP(t, srv, key)
		n, err := lspnet.New(lspnet.Config{
			Transport: conn,
			Signer:    onionmsg.NewPrivKeySigner(priv),
			Clock:     clk, Logger: testkit.Quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, conn
	}
	h.bobNode, h.bobConn = node(bobPriv, bob)
	h.carolNode, _ = node(carolPriv, carol)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	mux := lspnet.NewMux()
	mux.HandleRequest(onionmsg.TypeInvoiceRequest, func(ctx context.Context, in *lspnet.Inbound) (onionmsg.Message, error) {
		if err := in.Authentic(); err != nil {
			return nil, err
		}
		if h.invoicesDown.Load() {
			return nil, errors.New("test: carol cannot serve invoices")
		}
		return h.invoice(in.Msg.(*onionmsg.InvoiceRequest)), nil
	})
	mux.HandleMessage(onionmsg.TypeHeldHTLCAvailable, func(ctx context.Context, in *lspnet.Inbound) error {
		m := in.Msg.(*onionmsg.HeldHTLCAvailable)
		h.mu.Lock()
		h.held[m.HoldID] = m
		h.mu.Unlock()
		return in.Authentic()
	})
	mux.HandleMessage(onionmsg.TypeHoldOutcome, func(ctx context.Context, in *lspnet.Inbound) error {
		m := in.Msg.(*onionmsg.HoldOutcome)
		h.mu.Lock()
		h.outcomes[m.HoldID] = append(h.outcomes[m.HoldID], m)
		h.mu.Unlock()
		return in.Authentic()
	})
	wg.Add(1)
	go func() { defer wg.Done(); h.carolNode.Run(ctx, mux) }()
	h.startBob()
	return h
}

// startBob opens bob's store and runs his sender role, as a daemon start
// does; restartBob stops it first, as a crash followed by a start would
// (everything in flight is abandoned, nothing is cleaned up by the role).
func (h *harness) startBob() {
	h.startBobNoWait()
	select {
	case <-h.m.Running():
	case <-time.After(10 * time.Second):
		h.t.Fatal("sender role did not start")
	}
	// The deadline watcher's timer is set: advancing the clock fires it.
	h.waitTimer(h.cfg.DeadlineInterval)
}

// startBobNoWait starts bob as startBob does, with his bus consumer running
// from the start, and returns without waiting for the sender role to have
// resumed its holds.
func (h *harness) startBobNoWait() {
	t := h.t
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: h.dbPath(), Clock: h.clock,
		Logger: testkit.Quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(h.cfg, Deps{Store: store, Lnd: h.lnd, Net: flakyNet{h.bobNode, &h.outcomesDown, &h.heldDown},
		Clock: h.clock, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mux := lspnet.NewMux()
	m.Register(mux)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := m.Run(ctx); err != nil {
			t.Errorf("bob: %v", err)
		}
	}()
	go func() { defer wg.Done(); h.bobNode.Run(ctx, mux) }()
	h.store, h.m = store, m
	h.stop = func() { cancel(); wg.Wait(); store.Close() }
	t.Cleanup(func() { h.stop() })
}

// waitTimer waits until a timer of d is set on the test clock that no
// earlier call waited for: a goroutine is then waiting on the clock, and
// advancing it by d fires that timer.
func (h *harness) waitTimer(d time.Duration) {
	h.t.Helper()
	testkit.Eventually(h.t, 10*time.Second, "a timer of "+d.String(), func() bool {
		h.timerMu.Lock()
		defer h.timerMu.Unlock()
		if h.timers[d] > h.seen[d] {
			h.seen[d] = h.timers[d]
			return true
		}
		return false
	})
}

// dbPath is bob's store.
func (h *harness) dbPath() string { return filepath.Join(h.dbDir, "bob.db") }

// flakyNet is bob's messenger, with hold_outcome and held_htlc_available
// sends that fail while down.
type flakyNet struct {
	*lspnet.Node
	down, heldDown *atomic.Bool
}

func (n flakyNet) Send(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) error {
	switch m.(type) {
	case *onionmsg.HoldOutcome:
		if n.down.Load() {
			return errors.New("test: receiver LSP unreachable")
		}
	case *onionmsg.HeldHTLCAvailable:
		if n.heldDown.Load() {
			return errors.New("test: receiver LSP unreachable")
		}
	}
	return n.Node.Send(ctx, to, m)
}

func (h *harness) restartBob() {
	h.stop()
	h.startBob()
}

func (h *harness) request(amount lnwire.MilliSatoshi) PaymentRequest {
	return PaymentRequest{ReceiverKey: h.dave, ReceiverLSP: h.carol,
		AmountMsat: amount, Owner: "wallet"}
}

// create makes a payment of amount to dave and returns its hold.
func (h *harness) create(amount lnwire.MilliSatoshi, tune ...func(*PaymentRequest)) *holdstore.Hold {
	h.t.Helper()
	req := h.request(amount)
	for _, f := range tune {
		f(&req)
	}
	hold, err := h.m.CreatePayment(context.Background(), req)
	if err != nil {
		h.t.Fatalf("create payment: %v", err)
	}
	return hold
}

// pay is the sender paying the hold invoice; it returns once bob holds it.
func (h *harness) pay(hold *holdstore.Hold) *holdstore.Hold {
	h.t.Helper()
	height, _ := h.lnd.CurrentHeight(context.Background())
	if err := h.lnd.PayHoldInvoice(hold.PaymentHash, height+h.cfg.HoldCltvDelta); err != nil {
		h.t.Fatal(err)
	}
	return h.waitState(hold.ID, holdstore.StateHeld)
}

// announced waits for carol to hold bob's held_htlc_available.
func (h *harness) announced(id holdstore.ID) *onionmsg.HeldHTLCAvailable {
	h.t.Helper()
	var m *onionmsg.HeldHTLCAvailable
	testkit.Eventually(h.t, 10*time.Second, "held_htlc_available at carol", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		m = h.held[onionmsg.HoldID(id)]
		return m != nil
	})
	return m
}

// releaseFor is dave's signed release of a hold carol was told of.
func (h *harness) releaseFor(held *onionmsg.HeldHTLCAvailable, signer *btcec.PrivateKey) *onionmsg.ReleaseHeldHTLC {
	h.t.Helper()
	rel := onionmsg.NewRelease(held, h.clock.Now(), 10*time.Minute)
	if err := rel.Sign(context.Background(), onionmsg.NewPrivKeySigner(signer)); err != nil {
		h.t.Fatal(err)
	}
	return rel
}

// peer connects another member LSP, key i, to the bus: it can send to bob
// (and consumes nothing).
func (h *harness) peer(i int) *lspnet.Node {
	h.t.Helper()
	priv, key := testkit.Key(i)
	n, err := lspnet.New(lspnet.Config{
		Transport: testkit.ConnectLSP(h.t, h.srv, key),
		Signer:    onionmsg.NewPrivKeySigner(priv),
		Clock:     h.clock, Logger: testkit.Quiet(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// relay is carol forwarding a release to bob over NATS.
func (h *harness) relay(rel *onionmsg.ReleaseHeldHTLC) {
	h.t.Helper()
	if err := h.carolNode.Send(context.Background(), h.bob, rel); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) get(id holdstore.ID) *holdstore.Hold {
	h.t.Helper()
	hold, err := h.store.Get(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return hold
}

func (h *harness) waitState(id holdstore.ID, st holdstore.State) *holdstore.Hold {
	h.t.Helper()
	var hold *holdstore.Hold
	testkit.Eventually(h.t, 10*time.Second, "hold "+string(st), func() bool {
		hold = h.get(id)
		return hold.State == st
	})
	return hold
}

// waitResolved waits until lnd has done what the hold's final state asks.
func (h *harness) waitResolved(id holdstore.ID) *holdstore.Hold {
	h.t.Helper()
	var hold *holdstore.Hold
	testkit.Eventually(h.t, 10*time.Second, "hold resolved", func() bool {
		hold = h.get(id)
		return hold.Resolved
	})
	return hold
}

// outcomesOf is what carol was told of a hold.
func (h *harness) outcomesOf(id holdstore.ID) []*onionmsg.HoldOutcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*onionmsg.HoldOutcome(nil), h.outcomes[onionmsg.HoldID(id)]...)
}

// invoiceState is the state of the hold invoice at bob's lnd.
func (h *harness) invoiceState(hash lntypes.Hash) string {
	inv, ok := h.lnd.Invoice(hash)
	if !ok {
		return "none"
	}
	return inv.State.String()
}

// advance moves the test clock, firing the timers it passes.
func (h *harness) advance(d time.Duration) {
	h.clock.SetTime(h.clock.Now().Add(d))
}

// finalEvents counts the final events of a hold in the event log.
func (h *harness) finalEvents(id holdstore.ID) int {
	h.t.Helper()
	evs, err := h.store.History(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Final {
			n++
		}
	}
	return n
}
