package scenarios

import (
	"fmt"
	"strings"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// notes gathers what the records show of one kind of violation for one
// payment: it is counted once, with every observation in its detail.
type notes []string

func (n *notes) add(format string, args ...any) {
	*n = append(*n, fmt.Sprintf(format, args...))
}

func (n notes) String() string { return strings.Join(n, "; ") }

// payment judges one payment of the run.
func (j *judge) payment(s Sent) {
	h := s.Hash
	alice, bob, dave := j.ledger(regtest.Alice), j.ledger(regtest.Bob),
		j.ledger(regtest.Dave)
	paid, aliceFlying := byStatus(alice.payments(h))
	aliceTried := len(alice.payments(h)) > 0
	out, outFlying := byStatus(bob.payments(h))
	hold, hasHold := bob.invoice(h)
	inv, hasInv := dave.invoice(h)
	daveSettled := hasInv && inv.State == lnd.InvoiceSettled
	bobPaid := len(out) > 0 || daveSettled

	// lnd's ghost payment (lnd_ghost_payment) after bob's daemon canceled
	// it (invariant 2's end): alice not paying, bob's hold invoice
	// canceled, dave's invoice neither settled nor accepted, and bob's
	// outbound, which lnd keeps IN_FLIGHT for good, unable to complete.
	ghost := outFlying > 0 && len(paid) == 0 && aliceFlying == 0 &&
		hasHold && hold.State == lnd.InvoiceCanceled &&
		(!hasInv || (inv.State != lnd.InvoiceSettled &&
			inv.State != lnd.InvoiceAccepted)) && j.outboundDead(h)
	if ghost {
		// Nothing can complete it and nothing is held: judged by what
		// is, and told apart.
		outFlying = 0
		j.report.LndGhosts = append(j.report.LndGhosts, h)
	}

	var stuck, lost, twice, amounts notes
	if aliceFlying > 0 {
		stuck.add("alice's payment is in flight")
	}
	if hasHold && !hold.State.IsFinal() {
		stuck.add("bob's hold invoice is %s", hold.State)
	}
	if outFlying > 0 {
		stuck.add("bob's payment to dave is in flight")
	}
	if hasInv && inv.State == lnd.InvoiceAccepted {
		stuck.add("dave's invoice is ACCEPTED")
	}
	for _, node := range j.nodes() {
		if n := j.ledger(node).htlcs(h); n > 0 {
			stuck.add("%d HTLCs pending at %s", n, node)
		}
	}

	daveAccepted := hasInv && inv.State == lnd.InvoiceAccepted
	if len(paid) > 0 && !daveSettled && !daveAccepted {
		lost.add("alice paid, dave's invoice is %s", invState(inv, hasInv))
	}
	for _, p := range paid {
		if p.Preimage.Hash() != h {
			lost.add("alice paid without the preimage")
			break
		}
	}
	holdCanceled := hasHold && hold.State == lnd.InvoiceCanceled
	if bobPaid && (holdCanceled || (aliceTried && len(paid) == 0 &&
		aliceFlying == 0)) {
		lost.add("bob paid dave; alice's hold is %s, %d of her %d "+
			"payments succeeded", invState(hold, hasHold), len(paid),
			len(alice.payments(h)))
	}
	if len(paid) > 1 {
		twice.add("alice paid %d times", len(paid))
	}
	if len(out) > 1 {
		twice.add("bob paid dave %d times", len(out))
	}

	v := Verdict{Sent: s}
	switch {
	case len(stuck) > 0:
		v.Fate = FatePending
	case len(paid) > 0 && daveSettled && hasHold &&
		hold.State == lnd.InvoiceSettled && len(lost) == 0:
		v.Fate = FateSettled
	case len(paid) == 0 && !bobPaid && holdCanceled:
		v.Fate = FateCanceled
	default:
		v.Fate = FateBroken
	}
	if v.Fate == FateSettled {
		hold := s.AmountMsat + s.FeeMsat
		if got := paid[0].ValueMsat; got != hold {
			amounts.add("alice paid %d msat, want %d", got, hold)
		}
		if got := holdPaid(bob, h); got != hold {
			amounts.add("bob's hold invoice took %d msat, want %d", got,
				hold)
		}
		if got := inv.AmountPaidMsat; got != s.AmountMsat {
			amounts.add("dave's invoice got %d msat, want %d", got,
				s.AmountMsat)
		}
		if len(out) > 0 {
			v.RoutingFeeMsat = out[0].FeeMsat
			if got := out[0].ValueMsat; got != s.AmountMsat {
				amounts.add("bob paid dave %d msat, want %d", got,
					s.AmountMsat)
			}
		}
	}
	j.report.Payments = append(j.report.Payments, v)

	for _, k := range []struct {
		kind  ViolationKind
		notes notes
	}{{Lost, lost}, {PaidTwice, twice}, {Stuck, stuck},
		{BalanceMismatch, amounts}} {
		if len(k.notes) > 0 {
			j.add(k.kind, h, "", "%s", k.notes)
		}
	}
	switch {
	case !hasHold:
		j.add(WrongFate, h, regtest.Bob, "bob's lnd has no hold invoice "+
			"for it")
	case v.Fate == FateBroken && len(lost) == 0 && len(twice) == 0:
		j.add(WrongFate, h, "", "final, but the records disagree: alice "+
			"paid %d times, bob's hold %s, dave's invoice %s", len(paid),
			invState(hold, hasHold), invState(inv, hasInv))
	case s.Want != "" && (v.Fate == FateSettled || v.Fate == FateCanceled) &&
		v.Fate != s.Want && !ghost:
		// A ghost is canceled whatever was wanted: lnd refuses to pay a
		// hash again while it calls a payment of it in flight.
		j.add(WrongFate, h, "", "%s, want %s", v.Fate, s.Want)
	}
}

// outboundDead reports whether bob's outbound payment for h, which his lnd
// calls in flight, can no longer complete and holds nothing: no channel of
// any node carries an HTLC of h, and the chain is past the expiry of every
// attempt (any HTLC it could still send would be refused by every hop).
func (j *judge) outboundDead(h lntypes.Hash) bool {
	bob := j.ledger(regtest.Bob)
	if bob.Height == 0 {
		return false
	}
	for _, node := range j.nodes() {
		if j.ledger(node).htlcs(h) > 0 {
			return false
		}
	}
	for _, p := range bob.payments(h) {
		if p.Status != lnd.PaymentInFlight {
			continue
		}
		if len(p.HTLCs) == 0 {
			return false
		}
		for _, a := range p.HTLCs {
			if a.TimeLock == 0 || a.TimeLock >= bob.Height {
				return false
			}
		}
	}
	return true
}

// invState names an invoice's state, or says there is none.
func invState(inv lnd.Invoice, ok bool) string {
	if !ok {
		return "missing"
	}

	return inv.State.String()
}

// holdPaid is what bob's hold invoice for hash took.
func holdPaid(bob *Ledger, hash lntypes.Hash) lnwire.MilliSatoshi {
	inv, _ := bob.invoice(hash)

	return inv.AmountPaidMsat
}

// strayHTLCs counts the HTLCs pending for payments that are not the run's:
// one violation per payment hash.
func (j *judge) strayHTLCs() {
	var hashes []lntypes.Hash
	where := map[lntypes.Hash]*notes{}
	for _, node := range j.nodes() {
		for _, ch := range j.ledger(node).Channels {
			for _, h := range ch.HTLCs {
				if j.known[h.Hash] {
					continue
				}
				if where[h.Hash] == nil {
					hashes = append(hashes, h.Hash)
					where[h.Hash] = &notes{}
				}
				where[h.Hash].add("an HTLC of %d msat pending at %s "+
					"(channel %d)", h.AmountMsat, node, ch.ChanID)
			}
		}
	}
	for _, h := range hashes {
		j.add(Stuck, h, "", "not a payment of this run: %s", where[h])
	}
}

// closes counts the channels closed by force or closing: one violation per
// channel, however many of its nodes report it. A channel waiting for its
// closing transaction counts too: lnd does not tell a cooperative close
// from a forced one until it confirms, and the scenarios close none.
func (j *judge) closes() {
	seen := map[string]bool{}
	add := func(node, point, format string, args ...any) {
		if seen[point] {
			return
		}
		seen[point] = true
		j.add(ForceClose, lntypes.Hash{}, node, "channel %s %s", point,
			fmt.Sprintf(format, args...))
	}
	for _, node := range j.nodes() {
		l := j.ledger(node)
		for _, ch := range l.Closed {
			if ch.CloseType.Forced() {
				add(node, ch.ChannelPoint, "closed: %s at height %d",
					ch.CloseType, ch.CloseHeight)
			}
		}
		for _, ch := range l.Pending.ForceClosing {
			add(node, ch.ChannelPoint, "force closing: %d sat in limbo, "+
				"%d HTLCs to resolve on chain", ch.LimboBalance,
				ch.PendingHTLCs)
		}
		for _, ch := range l.Pending.WaitingClose {
			add(node, ch.ChannelPoint, "closing: tx %s not confirmed",
				ch.ClosingTxID)
		}
	}
}

// balances compares each node's channel balance with what the settled
// payments moved, to the msat (but for lnd's rounding dust, Ledger.DustMsat,
// when the balances count the commitment fees).
func (j *judge) balances(before Balances) {
	want := Balances{}
	for _, v := range j.report.Payments {
		if v.Fate != FateSettled {
			continue
		}
		for name, d := range Settled(int64(v.AmountMsat), int64(v.FeeMsat),
			int64(v.RoutingFeeMsat)) {
			want[name] += d
		}
	}
	for _, node := range j.nodes() {
		was, ok := before[node]
		if !ok {
			continue
		}
		moved := j.ledger(node).BalanceMsat - was
		if off := moved - want[node]; off != 0 &&
			(off <= -j.ledger(node).DustMsat || off >= j.ledger(node).DustMsat) {
			j.add(BalanceMismatch, lntypes.Hash{}, node, "channel balance "+
				"moved %+d msat, the settled payments %+d", moved,
				want[node])
		}
	}
}
