package scenarios

import (
	"fmt"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
)

// LndFault is a stuck payment the soak traces to lnd rather than to
// asynclsp: bob's daemon did what the invariants ask, and lnd did not
// follow through. The soak still counts it as a violation (money is stuck
// at a channel); it says whose it is.
type LndFault string

// The lnd faults the soak recognises, each by lnd's own records alone.
const (
	// LndGhostPayment: bob's lnd has his payment to dave IN_FLIGHT, but
	// no channel of any node carries an HTLC for it and dave's invoice
	// is not settled: an attempt handed to lnd's switch as lnd shut down,
	// whose HTLC never got into a commitment, is "resumed" at every start
	// and never resolved (lnd issues 5152, 6249, 8975). Bob's daemon
	// rightly keeps the hold (invariant 2: the payment may still succeed
	// as far as lnd says).
	LndGhostPayment LndFault = "lnd_ghost_payment"

	// LndCanceledButHeld: bob's hold invoice is CANCELED, but alice's
	// HTLC is still on her channel to bob: lnd took the cancel, and its
	// link never failed the HTLC back (after restarts of bob's lnd the
	// HTLC was not replayed to the invoice registry, so the cancel
	// reached nobody).
	LndCanceledButHeld LndFault = "lnd_canceled_but_held"
)

// lndFault says whether a stuck payment is one of lnd's, by the ledgers.
func lndFault(hash lntypes.Hash, l Ledgers) (LndFault, bool) {
	bob, dave := l[regtest.Bob], l[regtest.Dave]
	if bob == nil || dave == nil {
		return "", false
	}
	alice, carol := l[regtest.Alice], l[regtest.Carol]
	if alice == nil || carol == nil || alice.htlcs(hash) == 0 ||
		carol.htlcs(hash) > 0 || dave.htlcs(hash) > 0 ||
		bob.htlcs(hash) != alice.htlcs(hash) {
		// Not only alice's HTLC to bob, seen at both ends.
		return "", false
	}
	hold, hasHold := bob.invoice(hash)
	inv, hasInv := dave.invoice(hash)
	_, bobFlying := byStatus(bob.payments(hash))
	switch {
	case !hasHold:
	case bobFlying > 0 && hold.State == lnd.InvoiceAccepted &&
		(!hasInv || inv.State == lnd.InvoiceOpen):
		return LndGhostPayment, true
	case bobFlying == 0 && hold.State == lnd.InvoiceCanceled:
		return LndCanceledButHeld, true
	}

	return "", false
}

// lndFaults lists the stuck payments of report that are lnd's, by kind.
func lndFaults(report *Report, l Ledgers) map[LndFault][]string {
	out := map[LndFault][]string{}
	for _, v := range report.Violations {
		if v.Kind != Stuck {
			continue
		}
		if f, ok := lndFault(v.Hash, l); ok {
			out[f] = append(out[f], fmt.Sprintf("%s: %s", v.Hash, v.Detail))
		}
	}

	return out
}
