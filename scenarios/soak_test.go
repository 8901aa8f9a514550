package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/invoices"
	"github.com/lightningnetwork/lnd/lntypes"
)

// The short soak of make test: about 30 faults over a few minutes.
const (
	soakShortSeed     = 17
	soakShortFaults   = 30
	soakShortPayments = 40
	soakShortEvery    = 4 * time.Second
	soakShortSettle   = 2 * time.Minute
)

// TestSoakShort is make soak at a size for make test, with a fixed seed:
// a stream of async payments from three wallets at bob to dave, released
// at once, late, never, after dave's invoice expired, or paid by alice in
// parts, while the injector kills, freezes and restarts both daemons,
// restarts bob's and carol's lnd, takes NATS nodes away and mines bursts.
// The ledgers of every lnd must show no violation, bob must have ended
// every payment, everything struck must have come back, and every kind of
// fault must have struck at least once.
func TestSoakShort(t *testing.T) {
	cfg := SoakConfig{Seed: soakShortSeed, Faults: soakShortFaults,
		Payments: soakShortPayments, Every: soakShortEvery,
		Settle: soakShortSettle, Progress: t.Logf}
	net := regtest.StartT(t, SoakNetOptions())
	ctx := testCtx(t, 15*time.Minute)
	cluster, err := StartNATSCluster(ctx, filepath.Join(net.Dir, "nats"), 3)
	must(t, err)
	t.Cleanup(cluster.Close)
	c := newCastOn(t, net, SoakCastOptions(cfg, cluster.URLs(), "debug"))
	timed(t)

	r, err := Soak(ctx, c, cluster, cfg)
	if r != nil {
		var b strings.Builder
		r.Print(&b)
		t.Log(b.String())
	}
	switch {
	case errors.Is(err, ErrSoak) && r.OnlyLnd():
		// Told, not failed: a payment lnd left stuck, with bob's
		// daemon doing what the invariants ask (soak_lnd.go).
		t.Logf("LND FAULTS, not asynclsp's: %v; broken links %v",
			r.LndFaults, r.BrokenLinks)
	default:
		must(t, err)
	}
	struck := r.StruckKinds()
	for _, k := range FaultKinds {
		if struck[k] == 0 {
			t.Errorf("no %s struck", k)
		}
	}
	if f := r.Ledger.Fates(); f[FateSettled] == 0 || f[FateCanceled] == 0 {
		t.Errorf("the ledgers show %v: want both fates", f)
	}
}

// TestSoakPlanReplays: a seed and the sizes are the whole schedule: the
// same ones draw the same faults at the same offsets and the same
// payments; another seed draws another; every kind of fault is in a plan
// of at least as many faults as there are kinds, and the offsets follow
// the order.
func TestSoakPlanReplays(t *testing.T) {
	a := NewSoakPlan(12345, 30, 60, 3, 6*time.Second)
	b := NewSoakPlan(12345, 30, 60, 3, 6*time.Second)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed drew two plans")
	}
	if reflect.DeepEqual(a, NewSoakPlan(12346, 30, 60, 3, 6*time.Second)) {
		t.Fatal("two seeds drew the same plan")
	}
	fc := a.FaultCounts()
	for _, k := range FaultKinds {
		if fc[k] == 0 {
			t.Errorf("no %s in %s", k, a.Summary())
		}
	}
	for i := 1; i < len(a.Faults); i++ {
		if a.Faults[i].At <= a.Faults[i-1].At {
			t.Fatalf("fault %d at %v, after %v", i, a.Faults[i].At,
				a.Faults[i-1].At)
		}
	}
	amounts := map[uint64]bool{}
	for i, p := range a.Payments {
		if p.At < 0 || p.At > a.Span || p.Sender < 0 || p.Sender > 2 {
			t.Fatalf("payment %d: %+v", i, p)
		}
		if p.Kind == PayExpiring {
			if amounts[uint64(p.Amount)] {
				t.Fatalf("two expiring payments of %d msat", p.Amount)
			}
			amounts[uint64(p.Amount)] = true
		}
		if (p.Kind == PayMPP) != (p.Shard > 0) || p.Shard >= p.Amount {
			t.Fatalf("payment %d: shard %d of %d", i, p.Shard, p.Amount)
		}
	}
	pc := a.PaymentCounts()
	for _, k := range PayKinds {
		if pc[k] == 0 {
			t.Errorf("no %s payment in %s", k, a.Summary())
		}
	}
}

// TestSoakPlanSkips: a kind left out never strikes, every other one does,
// and the replay line says so; -skip takes only known kinds, and not all.
func TestSoakPlanSkips(t *testing.T) {
	skip, err := ParseFaultKinds("lnd_bob, nats_node")
	if err != nil {
		t.Fatal(err)
	}
	p := NewSoakPlan(12345, 60, 60, 3, 6*time.Second, skip...)
	fc := p.FaultCounts()
	for _, k := range FaultKinds {
		if left := k == FaultLndBob || k == FaultNATSNode; left != (fc[k] == 0) {
			t.Errorf("%s struck %d times, skipped %v", k, fc[k], left)
		}
	}
	if got, want := p.Replay(), `make soak SEED=12345 FAULTS=60 PAYMENTS=60 `+
		`SOAK_FLAGS="-skip lnd_bob,nats_node"`; got != want {
		t.Errorf("replay %q, want %q", got, want)
	}
	if got := NewSoakPlan(12345, 60, 60, 3, 6*time.Second).Replay(); got !=
		"make soak SEED=12345 FAULTS=60 PAYMENTS=60" {
		t.Errorf("replay without skip: %q", got)
	}
	all := make([]string, len(FaultKinds))
	for i, k := range FaultKinds {
		all[i] = string(k)
	}
	for _, bad := range []string{"lnd_dave", strings.Join(all, ",")} {
		if _, err := ParseFaultKinds(bad); err == nil {
			t.Errorf("-skip %s accepted", bad)
		}
	}
}

// TestSoakMineCap: a burst stops soakMineMargin blocks short of the
// earliest deadline of a held payment dave is to release, ignores the
// others, and is free when there is none.
func TestSoakMineCap(t *testing.T) {
	s := &soakRun{live: map[int]*soakLive{
		1: {release: true, deadline: 300},
		2: {release: true, deadline: 0}, // not held yet
		3: {release: false, deadline: 200},
	}}
	if got := s.mineCap(250); got != 300-250-soakMineMargin {
		t.Fatalf("mineCap(250) = %d", got)
	}
	if got := s.mineCap(295); got != 0 {
		t.Fatalf("mineCap(295) = %d", got)
	}
	delete(s.live, 1)
	if got := s.mineCap(295); got < 1000 {
		t.Fatalf("mineCap without releases = %d", got)
	}
	top, releases, n := s.liveDeadlines()
	if top != 200 || releases != 1 || n != 2 {
		t.Fatalf("liveDeadlines = %d, %d, %d", top, releases, n)
	}

	// Past the outbound CLTV limit of the holds dave is to release,
	// once held; the others' do not count.
	if got := s.outboundEnd(); got != 0 {
		t.Fatalf("outboundEnd with no expiry known = %d", got)
	}
	s.live[2].expiry, s.live[3].expiry = 500, 900
	if got := s.outboundEnd(); got != 500-soakSafetyMargin+1 {
		t.Fatalf("outboundEnd = %d", got)
	}
}

// TestSoakLndFaults names the two moments the soak saw lnd leave a payment
// stuck, by lnd's records alone, and tells them from asynclsp's: bob's lnd
// stopped just after handing an outbound HTLC to its switch (seed 17, the
// lnd_bob fault at +6.3 s: the payment IN_FLIGHT for good, no HTLC on any
// channel past bob), and a hold canceled after two restarts of bob's lnd
// whose HTLC lnd's link never failed back. The same records with an HTLC
// on its way to dave, or a hold bob never canceled, are not lnd's.
func TestSoakLndFaults(t *testing.T) {
	ghost := func() (*world, lntypes.Hash) {
		w := newWorld()
		h := w.canceled(1)
		w.invoice(regtest.Bob, h).State = lnd.InvoiceAccepted
		w.payment(regtest.Alice, h).Status = lnd.PaymentInFlight
		w.l[regtest.Bob].Payments = append(w.l[regtest.Bob].Payments,
			lnd.Payment{Hash: h, Status: lnd.PaymentInFlight})
		w.htlc(regtest.Alice, 1, h)
		w.htlc(regtest.Bob, 1, h)
		return w, h
	}
	w, h := ghost()
	if f, ok := lndFault(h, w.l); !ok || f != LndGhostPayment {
		t.Fatalf("ghost payment: %q, %v", f, ok)
	}
	w, h = ghost()
	w.htlc(regtest.Carol, 2, h) // on its way to dave: may still succeed
	if f, ok := lndFault(h, w.l); ok {
		t.Fatalf("an HTLC at carol called %q", f)
	}

	held := func() (*world, lntypes.Hash) {
		w := newWorld()
		h := w.canceled(2)
		w.payment(regtest.Alice, h).Status = lnd.PaymentInFlight
		w.htlc(regtest.Alice, 1, h)
		w.htlc(regtest.Bob, 1, h)
		return w, h
	}
	w, h = held()
	if f, ok := lndFault(h, w.l); !ok || f != LndCanceledButHeld {
		t.Fatalf("canceled but held: %q, %v", f, ok)
	}
	w, h = held()
	w.invoice(regtest.Bob, h).State = lnd.InvoiceAccepted // bob never canceled
	if f, ok := lndFault(h, w.l); ok {
		t.Fatalf("a hold bob keeps called %q", f)
	}

	// The report lets those through, and only those.
	w, h = ghost()
	r := &SoakReport{Ledger: Judge(w.sent, nil, w.l), LndFaults: lndFaults(
		Judge(w.sent, nil, w.l), w.l)}
	r.Unfinished = []string{"payment 1 (release_now) " + h.String() +
		": bob says FORWARDING"}
	if r.OK() || !r.OnlyLnd() {
		t.Fatalf("a ghost payment: OK %v, only lnd's %v: %s", r.OK(),
			r.OnlyLnd(), r.Ledger)
	}
	r.Unfinished = append(r.Unfinished, "payment 2 (never_released) "+
		hashOf(9).String()+": bob says HELD")
	if r.OnlyLnd() {
		t.Fatal("another payment unfinished at bob passed as lnd's")
	}
}

// TestSoakHeldWaitOutlastsMPPHold: the soak's wallet waits for bob to hold
// a payment longer than lnd holds an incomplete MPP set, or a wallet gives
// up on a payment lnd has not failed yet (seed 1208: two MPP payments whose
// first parts bob's lnd refused during a mining burst were never paid again).
func TestSoakHeldWaitOutlastsMPPHold(t *testing.T) {
	if soakHeldWait <= invoices.DefaultHtlcHoldDuration {
		t.Fatalf("soakHeldWait %v, lnd holds an incomplete MPP set %v",
			soakHeldWait, invoices.DefaultHtlcHoldDuration)
	}
	if soakPayTimeout < soakPayTries*soakHeldWait {
		t.Fatalf("soakPayTimeout %v leaves no room for %d tries of %v",
			soakPayTimeout, soakPayTries, soakHeldWait)
	}
}

// TestBrokenLinksReadsLndLogs: a link lnd failed after replaying a gone
// HTLC is reported by node, with its channels; a clean log reports nothing.
func TestBrokenLinksReadsLndLogs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) *regtest.Node {
		p := filepath.Join(dir, name+".log")
		must(t, os.WriteFile(p, []byte(text), 0o600))
		return &regtest.Node{Name: name, LogPath: p}
	}
	bob := write("bob", "2026-12-07 15:05:51.306 [ERR] HSWC: ChannelLink(502:3:0): "+
		"failing link: unable to settle htlc: No HTLC with ID 356 in channel 502:3:0 "+
		"with error: internal error\n"+
		"2026-12-07 15:05:51.400 [INF] HSWC: something else\n"+
		"2026-12-07 15:06:20.001 [ERR] HSWC: ChannelLink(502:3:0): "+
		"failing link: unable to settle htlc: No HTLC with ID 356 in channel 502:3:0\n")
	carol := write("carol", "2026-12-07 15:05:51.306 [INF] HSWC: all well\n")

	got, err := brokenLinks([]*regtest.Node{bob, carol})
	must(t, err)
	want := []string{"bob: 2 times, channel 502:3:0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("brokenLinks = %q, want %q", got, want)
	}
	r := &SoakReport{Ledger: &Report{}, BrokenLinks: got}
	if r.OK() {
		t.Fatal("a soak with a broken link is OK")
	}
}
