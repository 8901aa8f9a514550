package scenarios

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

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
	// reached nobody). lnd's forwarding-package bug does this: the
	// answer to another replayed add acknowledged this one's index
	// (scenarios/lndfix).
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

// brokenLinkLine is what lnd logs when a link replays an add whose HTLC the
// channel no longer has; the link then fails at every start. lnd's
// forwarding-package bug leads there (scenarios/lndfix,
// TestLndForwardingPackageAckIndex).
var brokenLinkLine = []byte("unable to settle htlc: No HTLC with ID")

// brokenLinks reads each node's lnd log for brokenLinkLine and returns, by
// node, how often it was logged and for which channels; empty when never.
func brokenLinks(nodes []*regtest.Node) ([]string, error) {
	var out []string
	for _, n := range nodes {
		f, err := os.Open(n.LogPath)
		if err != nil {
			return nil, err
		}
		times, chans := 0, map[string]bool{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.Contains(line, brokenLinkLine) {
				continue
			}
			times++
			if _, ch, ok := strings.Cut(string(line), " in channel "); ok {
				chans[strings.Fields(ch)[0]] = true
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s's lnd log: %w", n.Name, err)
		}
		if times == 0 {
			continue
		}
		ids := make([]string, 0, len(chans))
		for ch := range chans {
			ids = append(ids, ch)
		}
		sort.Strings(ids)
		out = append(out, fmt.Sprintf("%s: %d times, channel %s", n.Name,
			times, strings.Join(ids, ", ")))
	}

	return out, nil
}
