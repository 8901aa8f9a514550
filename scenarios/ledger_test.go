package scenarios

import (
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// These tests judge hand-made records: what each lnd node would show after
// a run, right or broken in one way at a time, then in every way at once.

const (
	amount  = lnwire.MilliSatoshi(10_000_000)
	lspFee  = lnwire.MilliSatoshi(11_000)
	routing = lnwire.MilliSatoshi(1_010)
	start   = int64(5_000_000_000)
)

// world is a run's records, built payment by payment.
type world struct {
	sent   []Sent
	before Balances
	l      Ledgers
}

func newWorld() *world {
	w := &world{before: Balances{}, l: Ledgers{}}
	for _, n := range []string{regtest.Alice, regtest.Bob, regtest.Carol, regtest.Dave} {
		w.before[n] = start
		w.l[n] = &Ledger{BalanceMsat: start}
	}
	return w
}

func preimage(i byte) lntypes.Preimage { return lntypes.Preimage{i, 0xa5} }

func hashOf(i byte) lntypes.Hash {
	p := preimage(i)
	return p.Hash()
}

// settled adds the records of payment i settled exactly once.
func (w *world) settled(i byte) lntypes.Hash {
	h, p := hashOf(i), preimage(i)
	w.sent = append(w.sent, Sent{Hash: h, AmountMsat: amount, FeeMsat: lspFee,
		Want: FateSettled})
	alice, bob, carol, dave := w.l[regtest.Alice], w.l[regtest.Bob],
		w.l[regtest.Carol], w.l[regtest.Dave]
	alice.Payments = append(alice.Payments, lnd.Payment{Hash: h,
		Status: lnd.PaymentSucceeded, Preimage: p, ValueMsat: amount + lspFee})
	bob.Invoices = append(bob.Invoices, lnd.Invoice{Hash: h, Preimage: &p,
		State: lnd.InvoiceSettled, ValueMsat: amount + lspFee,
		AmountPaidMsat: amount + lspFee})
	bob.Payments = append(bob.Payments, lnd.Payment{Hash: h,
		Status: lnd.PaymentSucceeded, Preimage: p, ValueMsat: amount,
		FeeMsat: routing})
	dave.Invoices = append(dave.Invoices, lnd.Invoice{Hash: h, Preimage: &p,
		State: lnd.InvoiceSettled, AmountPaidMsat: amount})
	alice.BalanceMsat -= int64(amount + lspFee)
	bob.BalanceMsat += int64(lspFee - routing)
	carol.BalanceMsat += int64(routing)
	dave.BalanceMsat += int64(amount)
	return h
}

// canceled adds the records of payment i canceled, alice's funds back.
func (w *world) canceled(i byte) lntypes.Hash {
	h := hashOf(i)
	w.sent = append(w.sent, Sent{Hash: h, AmountMsat: amount, FeeMsat: lspFee,
		Want: FateCanceled})
	w.l[regtest.Alice].Payments = append(w.l[regtest.Alice].Payments,
		lnd.Payment{Hash: h, Status: lnd.PaymentFailed,
			FailureReason: lnd.FailureIncorrectPaymentDetails})
	w.l[regtest.Bob].Invoices = append(w.l[regtest.Bob].Invoices,
		lnd.Invoice{Hash: h, State: lnd.InvoiceCanceled,
			ValueMsat: amount + lspFee})
	w.l[regtest.Dave].Invoices = append(w.l[regtest.Dave].Invoices,
		lnd.Invoice{Hash: h, State: lnd.InvoiceOpen})
	return h
}

// invoice returns a node's invoice for h, to change it.
func (w *world) invoice(node string, h lntypes.Hash) *lnd.Invoice {
	for i := range w.l[node].Invoices {
		if w.l[node].Invoices[i].Hash == h {
			return &w.l[node].Invoices[i]
		}
	}
	panic("no invoice")
}

// payment returns a node's first payment for h, to change it.
func (w *world) payment(node string, h lntypes.Hash) *lnd.Payment {
	for i := range w.l[node].Payments {
		if w.l[node].Payments[i].Hash == h {
			return &w.l[node].Payments[i]
		}
	}
	panic("no payment")
}

// htlc puts an HTLC for h on a channel of node.
func (w *world) htlc(node string, chanID uint64, h lntypes.Hash) {
	w.l[node].Channels = append(w.l[node].Channels, lnd.Channel{ChanID: chanID,
		HTLCs: []lnd.ChannelHTLC{{Hash: h, AmountMsat: amount}}})
}

func TestJudgeClean(t *testing.T) {
	w := newWorld()
	a, b := w.settled(1), w.settled(2)
	c := w.canceled(3)
	// An open channel without HTLCs and a cooperative close are fine.
	w.l[regtest.Bob].Channels = append(w.l[regtest.Bob].Channels, lnd.Channel{ChanID: 1})
	w.l[regtest.Alice].Closed = []lnd.ClosedChannel{{ChannelPoint: "co:0",
		CloseType: lnd.CloseCooperative}}

	r := Judge(w.sent, w.before, w.l)
	if !r.OK() {
		t.Fatalf("violations in a clean run:\n%s", r)
	}
	fates := map[lntypes.Hash]Fate{}
	for _, v := range r.Payments {
		fates[v.Hash] = v.Fate
		if v.Fate == FateSettled && v.RoutingFeeMsat != routing {
			t.Fatalf("routing fee %d", v.RoutingFeeMsat)
		}
	}
	if fates[a] != FateSettled || fates[b] != FateSettled ||
		fates[c] != FateCanceled || len(r.Payments) != 3 {
		t.Fatalf("fates %v", fates)
	}
	if s := r.String(); !strings.HasPrefix(s, "3 payments: 2 settled, 1 canceled, "+
		"0 pending, 0 broken; 0 violations") {
		t.Fatalf("summary %q", s)
	}
	// Either fate will do when none is wanted.
	if r := Judge(Expect(w.sent, ""), w.before, w.l); !r.OK() {
		t.Fatalf("without wanted fates:\n%s", r)
	}
}

// Each broken record gives its violation, counted once for the payment
// (or the node, or the channel) it concerns.
func TestJudgeViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(w *world, settled, canceled lntypes.Hash)
		want  map[ViolationKind]int
		fate  Fate   // of the payment the case spoils
		whose string // "canceled": the canceled payment; else the settled one
	}{{
		name: "alice paid, dave was not",
		spoil: func(w *world, s, _ lntypes.Hash) {
			w.invoice(regtest.Dave, s).State = lnd.InvoiceCanceled
			w.l[regtest.Dave].BalanceMsat -= int64(amount)
		},
		// The payment is not settled, so the balances of the three others
		// moved by a payment that does not count.
		want: map[ViolationKind]int{Lost: 1, BalanceMismatch: 3},
		fate: FateBroken,
	}, {
		name: "bob paid dave and canceled alice's hold",
		spoil: func(w *world, _, c lntypes.Hash) {
			w.invoice(regtest.Dave, c).State = lnd.InvoiceSettled
			w.l[regtest.Bob].Payments = append(w.l[regtest.Bob].Payments,
				lnd.Payment{Hash: c, Status: lnd.PaymentSucceeded,
					Preimage: preimage(2), ValueMsat: amount})
		},
		want:  map[ViolationKind]int{Lost: 1},
		fate:  FateBroken,
		whose: "canceled",
	}, {
		name: "alice paid without the preimage",
		spoil: func(w *world, s, _ lntypes.Hash) {
			w.payment(regtest.Alice, s).Preimage = lntypes.Preimage{}
		},
		want: map[ViolationKind]int{Lost: 1, BalanceMismatch: 4},
		fate: FateBroken,
	}, {
		name: "alice paid twice",
		spoil: func(w *world, s, _ lntypes.Hash) {
			w.l[regtest.Alice].Payments = append(w.l[regtest.Alice].Payments,
				*w.payment(regtest.Alice, s))
			w.l[regtest.Alice].BalanceMsat -= int64(amount + lspFee)
		},
		want: map[ViolationKind]int{PaidTwice: 1, BalanceMismatch: 1},
		fate: FateSettled,
	}, {
		name: "bob paid dave twice",
		spoil: func(w *world, s, _ lntypes.Hash) {
			w.l[regtest.Bob].Payments = append(w.l[regtest.Bob].Payments,
				*w.payment(regtest.Bob, s))
		},
		want: map[ViolationKind]int{PaidTwice: 1},
		fate: FateSettled,
	}, {
		name: "stuck: hold accepted, alice in flight, HTLCs pending",
		spoil: func(w *world, _, c lntypes.Hash) {
			w.invoice(regtest.Bob, c).State = lnd.InvoiceAccepted
			w.payment(regtest.Alice, c).Status = lnd.PaymentInFlight
			w.htlc(regtest.Alice, 1, c)
			w.htlc(regtest.Bob, 1, c)
		},
		want:  map[ViolationKind]int{Stuck: 1},
		fate:  FatePending,
		whose: "canceled",
	}, {
		name: "stuck: bob's payment in flight, dave's invoice accepted",
		spoil: func(w *world, _, c lntypes.Hash) {
			w.invoice(regtest.Bob, c).State = lnd.InvoiceAccepted
			w.l[regtest.Bob].Payments = append(w.l[regtest.Bob].Payments,
				lnd.Payment{Hash: c, Status: lnd.PaymentInFlight})
			w.invoice(regtest.Dave, c).State = lnd.InvoiceAccepted
		},
		want:  map[ViolationKind]int{Stuck: 1},
		fate:  FatePending,
		whose: "canceled",
	}, {
		name: "an HTLC of no payment of the run",
		spoil: func(w *world, _, _ lntypes.Hash) {
			w.htlc(regtest.Carol, 2, hashOf(9))
			w.htlc(regtest.Dave, 3, hashOf(9))
		},
		want: map[ViolationKind]int{Stuck: 1},
		fate: FateSettled,
	}, {
		name: "force closes, each channel once",
		spoil: func(w *world, _, _ lntypes.Hash) {
			w.l[regtest.Bob].Closed = []lnd.ClosedChannel{
				{ChannelPoint: "bc:0", CloseType: lnd.CloseLocalForce},
				{ChannelPoint: "co:0", CloseType: lnd.CloseCooperative}}
			w.l[regtest.Carol].Closed = []lnd.ClosedChannel{
				{ChannelPoint: "bc:0", CloseType: lnd.CloseRemoteForce}}
			w.l[regtest.Carol].Pending.ForceClosing = []lnd.PendingChannel{
				{ChannelPoint: "cd:0", LimboBalance: 100}}
			w.l[regtest.Dave].Pending.WaitingClose = []lnd.PendingChannel{
				{ChannelPoint: "cd:0"}}
			w.l[regtest.Alice].Pending.WaitingClose = []lnd.PendingChannel{
				{ChannelPoint: "ab:0"}}
		},
		want: map[ViolationKind]int{ForceClose: 3},
		fate: FateSettled,
	}, {
		name: "a balance off by one msat",
		spoil: func(w *world, _, _ lntypes.Hash) {
			w.l[regtest.Carol].BalanceMsat++
		},
		want: map[ViolationKind]int{BalanceMismatch: 1},
		fate: FateSettled,
	}, {
		// lnd's commit_fee holds the fractions of a satoshi of both
		// sides (under 2 sat a channel opened), counted with the
		// commitment fees: within them, no mismatch.
		name: "a balance with fees within lnd's rounding dust",
		spoil: func(w *world, _, _ lntypes.Hash) {
			w.l[regtest.Bob].DustMsat = 2_000
			w.l[regtest.Bob].BalanceMsat += 1_999
			w.l[regtest.Alice].DustMsat = 2_000
			w.l[regtest.Alice].BalanceMsat -= 1_000
		},
		want: map[ViolationKind]int{},
		fate: FateSettled,
	}, {
		name: "a balance with fees beyond lnd's rounding dust",
		spoil: func(w *world, _, _ lntypes.Hash) {
			w.l[regtest.Bob].DustMsat = 2_000
			w.l[regtest.Bob].BalanceMsat -= 2_000
		},
		want: map[ViolationKind]int{BalanceMismatch: 1},
		fate: FateSettled,
	}, {
		name: "amounts off: dave's invoice, the hold, bob's payment",
		spoil: func(w *world, s, _ lntypes.Hash) {
			w.invoice(regtest.Dave, s).AmountPaidMsat--
			w.invoice(regtest.Bob, s).AmountPaidMsat++
			w.payment(regtest.Bob, s).ValueMsat++
		},
		want: map[ViolationKind]int{BalanceMismatch: 1},
		fate: FateSettled,
	}, {
		name: "canceled where settled was wanted",
		spoil: func(w *world, _, c lntypes.Hash) {
			for i := range w.sent {
				if w.sent[i].Hash == c {
					w.sent[i].Want = FateSettled
				}
			}
		},
		want:  map[ViolationKind]int{WrongFate: 1},
		fate:  FateCanceled,
		whose: "canceled",
	}, {
		name: "no hold invoice at bob",
		spoil: func(w *world, _, c lntypes.Hash) {
			w.l[regtest.Bob].Invoices = w.l[regtest.Bob].Invoices[:1]
		},
		want:  map[ViolationKind]int{WrongFate: 1},
		fate:  FateBroken,
		whose: "canceled",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			s, c := w.settled(1), w.canceled(2)
			tc.spoil(w, s, c)
			r := Judge(w.sent, w.before, w.l)
			for _, k := range []ViolationKind{Lost, PaidTwice, Stuck,
				ForceClose, BalanceMismatch, WrongFate} {
				if r.Count(k) != tc.want[k] {
					t.Fatalf("%d %s, want %d:\n%s", r.Count(k), k,
						tc.want[k], r)
				}
			}
			whose := s
			if tc.whose == "canceled" {
				whose = c
			}
			for _, v := range r.Payments {
				if v.Hash == whose && v.Fate != tc.fate {
					t.Fatalf("fate %s, want %s:\n%s", v.Fate, tc.fate, r)
				}
			}
			for _, v := range r.Violations {
				perPayment := v.Kind == Lost || v.Kind == PaidTwice ||
					v.Kind == WrongFate
				if perPayment && v.Hash != whose {
					t.Fatalf("%s concerns %s, want %s", v, v.Hash, whose)
				}
			}
		})
	}
}

// A run broken every way at once: every violation is counted, none stops
// the check, and each names the payment it concerns.
func TestJudgeCollectsAll(t *testing.T) {
	w := newWorld()
	lost, twice, stuck, wrong := w.settled(1), w.settled(2), w.canceled(3),
		w.canceled(4)
	fine := w.settled(5)
	w.invoice(regtest.Dave, lost).State = lnd.InvoiceCanceled
	w.l[regtest.Dave].BalanceMsat -= int64(amount)
	w.l[regtest.Alice].Payments = append(w.l[regtest.Alice].Payments,
		*w.payment(regtest.Alice, twice))
	w.invoice(regtest.Bob, stuck).State = lnd.InvoiceAccepted
	w.htlc(regtest.Bob, 1, stuck)
	w.sent[3].Want = FateSettled
	w.l[regtest.Carol].Closed = []lnd.ClosedChannel{{ChannelPoint: "bc:0",
		CloseType: lnd.CloseBreach}}

	r := Judge(w.sent, w.before, w.l)
	concerns := map[ViolationKind]lntypes.Hash{Lost: lost, PaidTwice: twice,
		Stuck: stuck, WrongFate: wrong}
	for kind, h := range concerns {
		if r.Count(kind) != 1 {
			t.Fatalf("%d %s:\n%s", r.Count(kind), kind, r)
		}
		for _, v := range r.Violations {
			if v.Kind == kind && v.Hash != h {
				t.Fatalf("%s concerns %s, want %s", v, v.Hash, h)
			}
		}
	}
	// Alice paid the lost payment and dave was not paid: it is not
	// settled, so what it moved is off at alice, bob and carol.
	if r.Count(ForceClose) != 1 || r.Count(BalanceMismatch) != 3 {
		t.Fatalf("force closes %d, balance mismatches %d:\n%s",
			r.Count(ForceClose), r.Count(BalanceMismatch), r)
	}
	for _, v := range r.Payments {
		if v.Hash == fine && v.Fate != FateSettled {
			t.Fatalf("the fine payment is %s", v.Fate)
		}
	}
	if !strings.Contains(r.String(), "lost 1, paid_twice 1, stuck 1, "+
		"force_close 1, balance_mismatch 3, wrong_fate 1") {
		t.Fatalf("summary:\n%s", r)
	}
}

// A payment bob canceled whose outbound payment bob's lnd still calls in
// flight is judged canceled, and told apart, only when nothing can complete
// it: no HTLC of it anywhere, the chain past every attempt's expiry, dave's
// invoice not settled nor accepted. Short of any of these it is stuck.
func TestJudgeLndGhostAfterCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spoil  func(w *world, c lntypes.Hash)
		ghost  bool
		height uint32
	}{
		{name: "nothing left", ghost: true, height: 1000},
		{name: "an attempt not expired", height: 900},
		{name: "height unknown", height: 0},
		{name: "an HTLC on a channel", height: 1000,
			spoil: func(w *world, c lntypes.Hash) { w.htlc(regtest.Carol, 7, c) }},
		{name: "dave's invoice accepted", height: 1000,
			spoil: func(w *world, c lntypes.Hash) {
				w.invoice(regtest.Dave, c).State = lnd.InvoiceAccepted
			}},
		{name: "bob's hold not canceled", height: 1000,
			spoil: func(w *world, c lntypes.Hash) {
				w.invoice(regtest.Bob, c).State = lnd.InvoiceAccepted
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.settled(1)
			c := w.canceled(2)
			w.l[regtest.Bob].Payments = append(w.l[regtest.Bob].Payments,
				lnd.Payment{Hash: c, Status: lnd.PaymentInFlight,
					HTLCs: []lnd.HTLCAttempt{{Status: lnd.AttemptInFlight,
						TimeLock: 950}}})
			w.l[regtest.Bob].Height = tc.height
			if tc.spoil != nil {
				tc.spoil(w, c)
			}
			r := Judge(w.sent, w.before, w.l)
			if got := len(r.LndGhosts) == 1 && r.LndGhosts[0] == c; got != tc.ghost {
				t.Fatalf("ghosts %v, want ghost %v:\n%s", r.LndGhosts, tc.ghost, r)
			}
			if tc.ghost && !r.OK() {
				t.Fatalf("a ghost with nothing held is a violation:\n%s", r)
			}
			if tc.ghost {
				// Even where the plan wanted it settled.
				w.sent[1].Want = FateSettled
				if r := Judge(w.sent, w.before, w.l); !r.OK() {
					t.Fatalf("a ghost wanted settled is a violation:\n%s", r)
				}
			}
			if !tc.ghost && r.Count(Stuck) == 0 {
				t.Fatalf("not stuck:\n%s", r)
			}
		})
	}
}
