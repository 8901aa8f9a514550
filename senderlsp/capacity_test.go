package senderlsp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
	"pgregory.net/rapid"
)

// recountCheck is the capacity check as it was before the running total
// and the channel view: lnd's channels listed now, a sum over every
// unresolved hold not yet final, the same rules, and the liquidity times
// the overcommit factor in exact big integers.
func recountCheck(ctx context.Context, store *holdstore.Store, ln Lnd, cfg Config,
	req *PaymentRequest) error {

	chans, err := ln.ListChannels(ctx)
	if err != nil {
		return err
	}
	holds, err := store.Unresolved(ctx)
	if err != nil {
		return err
	}
	pending := new(big.Int)
	for _, h := range holds {
		if !h.State.Final() {
			pending.Add(pending, new(big.Int).SetUint64(uint64(h.AmountMsat)))
		}
	}
	var direct, any []lnd.Channel
	for _, c := range chans {
		if !c.Active {
			continue
		}
		any = append(any, c)
		if c.RemotePubKey == route.Vertex(req.ReceiverLSP) {
			direct = append(direct, c)
		}
	}
	out := any
	if len(direct) > 0 {
		out = direct
	}
	local, slots := new(big.Int), 0
	for _, c := range out {
		local.Add(local, big.NewInt(c.LocalBalance*1000))
		slots += c.FreeOutgoingSlots()
	}
	ppm := new(big.Float).Mul(big.NewFloat(cfg.CapacityOvercommit), big.NewFloat(1e6))
	ppmInt, _ := new(big.Float).Add(ppm, big.NewFloat(0.5)).Int(nil)
	limit := new(big.Int).Div(new(big.Int).Mul(local, ppmInt), big.NewInt(1e6))
	need := uint64(req.AmountMsat + cfg.RoutingFeeLimit(req.AmountMsat))
	if limit.Cmp(new(big.Int).Add(pending, new(big.Int).SetUint64(need))) < 0 {
		return ErrInsufficientLiquidity
	}
	if slots < cfg.MinFreeHTLCSlots {
		return ErrNoHTLCSlots
	}
	if req.SenderNode != nil {
		in := 0
		for _, c := range any {
			if c.RemotePubKey == route.Vertex(*req.SenderNode) {
				in += c.FreeIncomingSlots()
			}
		}
		if in < cfg.MinFreeHTLCSlots {
			return ErrNoHTLCSlots
		}
	}
	return nil
}

// capVerdict names a capacity check's answer.
func capVerdict(err error) string {
	switch {
	case err == nil:
		return "admit"
	case errors.Is(err, ErrInsufficientLiquidity):
		return "insufficient_liquidity"
	case errors.Is(err, ErrNoHTLCSlots):
		return "no_htlc_slots"
	}
	return "error: " + err.Error()
}

// storeHold writes a hold of amount at lsp, driven through path, straight
// into the store (no runner, no lnd): what the capacity check counts.
func storeHold(tb testing.TB, store *holdstore.Store, amount lnwire.MilliSatoshi,
	lsp onionmsg.NodeKey, path ...holdstore.State) *holdstore.Hold {

	tb.Helper()
	ctx := context.Background()
	var p lntypes.Preimage
	rand.Read(p[:])
	_, dave := testkit.Key(3)
	h := &holdstore.Hold{
		ID: holdstore.NewID(), PaymentHash: p.Hash(), Owner: "test",
		AmountMsat: amount, ReceiverKey: route.Vertex(dave),
		ReceiverLSP: route.Vertex(lsp), ReceiverInvoice: "lnbcrt1receiver",
		ReceiverInvoiceExpiry: start.Add(24 * time.Hour), CltvDelta: 1008,
		RetryPolicy: holdstore.RetryPatient, DeadlineTime: start.Add(12 * time.Hour),
	}
	copy(h.ReleaseSecret[:], p[:])
	// One commit for the whole path.
	from := holdstore.StateCreated
	err := store.Update(ctx, func(tx *holdstore.Tx) error {
		if _, err := tx.Create(h); err != nil {
			return err
		}
		for _, to := range path {
			tr := holdstore.Transition{ID: h.ID, From: from, To: to}
			switch to {
			case holdstore.StateHeld:
				tr.IncomingExpiry, tr.DeadlineHeight = 2008, 1768
			case holdstore.StateSettled:
				tr.Preimage = &p
			case holdstore.StateCanceled:
				tr.Reason = holdstore.ReasonDeadline
			}
			if _, err := tx.Apply(tr); err != nil {
				return fmt.Errorf("%s -> %s: %w", from, to, err)
			}
			from = to
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	h.State = from
	return h
}

// next lists the states a hold may move to (the store's table, which it
// does not export).
var next = map[holdstore.State][]holdstore.State{
	holdstore.StateCreated:    {holdstore.StateHeld, holdstore.StateCanceled},
	holdstore.StateHeld:       {holdstore.StateReleased, holdstore.StateCanceled},
	holdstore.StateReleased:   {holdstore.StateForwarding, holdstore.StateCanceled},
	holdstore.StateForwarding: {holdstore.StateForwarding, holdstore.StateSettled, holdstore.StateCanceled},
}

// TestCapacityMatchesRecount: on random workloads (holds of random amounts
// created, moved, settled, canceled and resolved; lnd's channels changed at
// random, the view refreshed on the clock; random requests and overcommit
// factors), the capacity check from the running total and the channel view
// answers exactly what the O(N) check it replaced answers over a recount.
func TestCapacityMatchesRecount(t *testing.T) {
	ctx := context.Background()
	_, carol := testkit.Key(2)
	_, other := testkit.Key(5)
	_, alice := testkit.Key(4)
	peers := []onionmsg.NodeKey{carol, other, alice}
	rapid.Check(t, func(rt *rapid.T) {
		clk := clock.NewTestClock(start)
		store, err := holdstore.Open(ctx, holdstore.Config{
			Path:  filepath.Join(t.TempDir(), "bob.db"),
			Clock: clk, Logger: testkit.Quiet()})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
		fake := testkit.NewFakeLnd(clk, carol)
		cfg := defaultTestConfig()
		m, err := New(cfg, Deps{Store: store, Lnd: fake, Net: noNet{},
			Clock: clk, Logger: testkit.Quiet()})
		if err != nil {
			rt.Fatal(err)
		}
		var holds []*holdstore.Hold

		rt.Repeat(map[string]func(*rapid.T){
			"hold": func(rt *rapid.T) {
				amount := lnwire.MilliSatoshi(rapid.Uint64Range(1, 5e9).Draw(rt, "amount"))
				lsp := rapid.SampledFrom(peers[:2]).Draw(rt, "lsp")
				// A random legal path from CREATED.
				var path []holdstore.State
				for st := holdstore.StateCreated; !st.Final() &&
					rapid.IntRange(0, 2).Draw(rt, "further") > 0; {
					st = rapid.SampledFrom(next[st]).Draw(rt, "to")
					path = append(path, st)
				}
				h := storeHold(t, store, amount, lsp, path...)
				if h.State.Final() && rapid.Bool().Draw(rt, "resolved") {
					if err := store.MarkResolved(ctx, h.ID); err != nil {
						rt.Fatal(err)
					}
				}
				holds = append(holds, h)
			},
			"move": func(rt *rapid.T) {
				var open []*holdstore.Hold
				for _, h := range holds {
					if !h.State.Final() {
						open = append(open, h)
					}
				}
				if len(open) == 0 {
					rt.Skip("no hold to move")
				}
				h := rapid.SampledFrom(open).Draw(rt, "hold")
				to := rapid.SampledFrom(next[h.State]).Draw(rt, "to")
				tr := holdstore.Transition{ID: h.ID, From: h.State, To: to}
				switch to {
				case holdstore.StateHeld:
					tr.IncomingExpiry, tr.DeadlineHeight = 2008, 1768
				case holdstore.StateSettled:
					p := lntypes.Preimage(h.ReleaseSecret)
					tr.Preimage = &p
				case holdstore.StateForwarding, holdstore.StateCanceled:
					tr.Reason = holdstore.ReasonNoRoute
				}
				tr.Resolved = to.Final() && rapid.Bool().Draw(rt, "resolved")
				if _, err := store.Apply(ctx, tr); err != nil {
					rt.Fatalf("%s -> %s: %v", h.State, to, err)
				}
				h.State = to
			},
			"channels": func(rt *rapid.T) {
				n := rapid.IntRange(0, 4).Draw(rt, "channels")
				chans := make([]lnd.Channel, n)
				for i := range chans {
					chans[i] = lnd.Channel{
						ChanID:           uint64(i + 1),
						RemotePubKey:     route.Vertex(rapid.SampledFrom(peers).Draw(rt, "peer")),
						Active:           rapid.IntRange(0, 4).Draw(rt, "active") > 0,
						LocalBalance:     rapid.Int64Range(0, 20_000_000).Draw(rt, "local"),
						MaxOutgoingHTLCs: 483, MaxIncomingHTLCs: 483,
						OutgoingHTLCs: rapid.IntRange(0, 483).Draw(rt, "out"),
						IncomingHTLCs: rapid.IntRange(0, 483).Draw(rt, "in"),
					}
				}
				fake.SetChannels(chans)
				clk.SetTime(clk.Now().Add(cfg.CapacityRefresh))
			},
			"wait": func(rt *rapid.T) {
				// Within the refresh: the view is reused.
				d := rapid.Int64Range(0, int64(cfg.CapacityRefresh)-1).Draw(rt, "wait")
				clk.SetTime(clk.Now().Add(time.Duration(d)))
			},
			"check": func(rt *rapid.T) {
				req := PaymentRequest{
					ReceiverLSP: rapid.SampledFrom(peers[:2]).Draw(rt, "to lsp"),
					AmountMsat:  lnwire.MilliSatoshi(rapid.Uint64Range(1, 1e10).Draw(rt, "request")),
				}
				if rapid.Bool().Draw(rt, "sender node") {
					req.SenderNode = &alice
				}
				ov := rapid.SampledFrom([]float64{1, 1, 0.5, 1.25, 2, 3.7}).Draw(rt, "overcommit")
				m.cfg.CapacityOvercommit = ov
				cfg.CapacityOvercommit = ov
				got := capVerdict(m.checkCapacity(ctx, &req))
				want := capVerdict(recountCheck(ctx, store, fake, cfg, &req))
				if got != want {
					rt.Fatalf("capacity check says %s, the recount %s", got, want)
				}
			},
		})
	})
}

// The overcommit factor moves the liquidity boundary, to the msat: with
// 0.1 BTC outbound to carol and capacity-overcommit 1.5, a create fits
// while pending + amount + routing fee limit <= 0.15 BTC, and is refused
// insufficient_liquidity one msat beyond; with 1, the same create is
// refused, as before overcommit existed.
func TestCapacityOvercommitBoundary(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, func(c *Config) { c.CapacityOvercommit = 1.5 })
	const local = 10_000_000 * 1000 // the fake's channel to carol, in msat
	amount := lnwire.MilliSatoshi(1_000_000_000)
	need := amount + h.cfg.RoutingFeeLimit(amount)
	// Pending holds that leave exactly need under 1.5 x local: held,
	// released, forwarding count; settled and canceled do not.
	pending := lnwire.MilliSatoshi(local*3/2) - need
	storeHold(t, h.store, pending/2, h.carol, holdstore.StateHeld)
	storeHold(t, h.store, pending/4, h.carol, holdstore.StateHeld, holdstore.StateReleased)
	storeHold(t, h.store, pending-pending/2-pending/4, h.carol, holdstore.StateHeld,
		holdstore.StateReleased, holdstore.StateForwarding)
	storeHold(t, h.store, 5e9, h.carol, holdstore.StateCanceled)

	req := h.request(amount)
	if err := h.m.checkCapacity(ctx, &req); err != nil {
		t.Fatalf("at the boundary: %v", err)
	}
	over := h.request(amount + 1)
	if err := h.m.checkCapacity(ctx, &over); !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("1 msat beyond the boundary: %v", err)
	}
	h.m.cfg.CapacityOvercommit = 1
	if err := h.m.checkCapacity(ctx, &req); !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("without overcommit: %v", err)
	}

	// Through a create: the refusal the API answers 503
	// insufficient_liquidity, and nothing stored or made at lnd.
	h.m.cfg.CapacityOvercommit = 1.5
	_, err := h.m.CreatePayment(ctx, over)
	if !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("create beyond the boundary: %v", err)
	}
	if n := h.lnd.Calls("AddHoldInvoice"); n != 0 {
		t.Fatalf("%d hold invoices made for a refused create", n)
	}
	if e := publicError(err); e.Code != "insufficient_liquidity" {
		t.Fatalf("API code %q", e.Code)
	}
	if _, err := h.m.CreatePayment(ctx, req); err != nil {
		t.Fatalf("create at the boundary: %v", err)
	}
	// That one now counts too: what is left is its routing fee limit,
	// too little for a create of 5,000 sat.
	if _, err := h.m.CreatePayment(ctx, h.request(5_000_000)); !errors.Is(err, ErrInsufficientLiquidity) {
		t.Fatalf("create after the boundary was reached: %v", err)
	}
}

// The view of lnd's channels: one ListChannels serves every check within
// capacity-refresh of it on the injected clock, and the checks that arrive
// while it is in flight; the next check after the refresh reads lnd again
// and sees what changed.
func TestChannelViewRefreshesOnTheClock(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewTestClock(start)
	var (
		calls atomic.Int32
		mu    sync.Mutex
		chans = []lnd.Channel{{ChanID: 1}}
		gate  chan struct{}
	)
	list := func(ctx context.Context) ([]lnd.Channel, error) {
		calls.Add(1)
		mu.Lock()
		c, g := chans, gate
		mu.Unlock()
		if g != nil {
			select {
			case <-g:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return c, nil
	}
	v := newChannelView(list, clk, 2*time.Second)
	get := func() uint64 {
		t.Helper()
		c, err := v.get(ctx)
		if err != nil || len(c) != 1 {
			t.Fatalf("view: %v, %v", c, err)
		}
		return c[0].ChanID
	}
	if get() != 1 || get() != 1 || calls.Load() != 1 {
		t.Fatalf("%d ListChannels for two checks at once", calls.Load())
	}
	mu.Lock()
	chans = []lnd.Channel{{ChanID: 2}}
	mu.Unlock()
	clk.SetTime(start.Add(2*time.Second - time.Nanosecond))
	if get() != 1 || calls.Load() != 1 {
		t.Fatalf("within the refresh: %d calls", calls.Load())
	}
	clk.SetTime(start.Add(2 * time.Second))
	if get() != 2 || calls.Load() != 2 {
		t.Fatalf("after the refresh: %d calls", calls.Load())
	}

	// Single flight: while one call is in flight, every check waits for
	// it; none makes its own.
	clk.SetTime(start.Add(10 * time.Second))
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() { defer wg.Done(); get() }()
	}
	testkit.Eventually(t, 5*time.Second, "a call in flight", func() bool {
		return calls.Load() == 3
	})
	mu.Lock()
	close(gate)
	gate = nil
	mu.Unlock()
	wg.Wait()
	if n := calls.Load(); n != 3 {
		t.Fatalf("16 checks during one call made %d calls", n-2)
	}

	// A caller that leaves does not fail those still waiting: they ask
	// again.
	clk.SetTime(start.Add(20 * time.Second))
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	leaving, leave := context.WithCancel(ctx)
	left := make(chan error)
	go func() { _, err := v.get(leaving); left <- err }()
	testkit.Eventually(t, 5*time.Second, "the leaver's call", func() bool {
		return calls.Load() == 4
	})
	mu.Lock()
	gate = nil // the next call answers at once
	mu.Unlock()
	stayed := make(chan error)
	go func() { _, err := v.get(ctx); stayed <- err }()
	leave()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left: %v", err)
	}
	if err := <-stayed; err != nil {
		t.Fatalf("a caller still there got %v", err)
	}

	// capacity-refresh 0: every check asks lnd.
	v0 := newChannelView(list, clk, 0)
	before := calls.Load()
	v0.get(ctx)
	v0.get(ctx)
	if n := calls.Load() - before; n != 2 {
		t.Fatalf("refresh 0: %d calls for 2 checks", n)
	}
}

func TestOvercommittedIsExact(t *testing.T) {
	for _, c := range []struct {
		local  lnwire.MilliSatoshi
		factor float64
		want   lnwire.MilliSatoshi
	}{
		{0, 1, 0},
		{1, 1, 1},
		{2_100_000_000_000_000_000, 1, 2_100_000_000_000_000_000},
		{1_000_000_001, 1.5, 1_500_000_001},
		{3, 0.5, 1},
		{1 << 62, 100, 1<<64 - 1}, // saturates
	} {
		if got := overcommitted(c.local, c.factor); got != c.want {
			t.Errorf("overcommitted(%d, %v) = %d, want %d", c.local, c.factor, got, c.want)
		}
	}
}
