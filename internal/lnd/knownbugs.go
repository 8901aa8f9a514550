package lnd

import (
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
)

// KnownBug is a bug of some lnd releases that harms an LSP holding
// payments, which asynclspd warns of when it connects to one.
type KnownBug struct {
	// Name is how the README and scenarios/lndfix name it.
	Name string

	// From is the first release with the bug; Fixed the first without
	// it, nil while no fixed release is known.
	From, Fixed *verrpc.Version

	// Harm says what it does and what to do.
	Harm string
}

// KnownBugs are the bugs asynclspd warns of.
var KnownBugs = []KnownBug{{
	Name: "fwdpkg-ack-index",
	From: &verrpc.Version{AppMajor: 0, AppMinor: 20, AppPatch: 0},
	Harm: "a link that restarts (an lnd restart, or a peer reconnecting) " +
		"acknowledges the wrong add of a replayed forwarding package: a " +
		"channel carrying held HTLCs can fail at every start and be " +
		"force-closed, or keep a canceled HTLC until it expires; build " +
		"lnd with scenarios/lndfix/fwdpkg-ack-index.patch (README: " +
		"Lingering HTLCs), and ignore this if it has the fix",
}}

// BugsOf returns the known bugs of lnd version v.
func BugsOf(v *verrpc.Version) []KnownBug {
	if v == nil {
		return nil
	}
	var out []KnownBug
	for _, b := range KnownBugs {
		if lndclient.AssertVersionCompatible(v, b.From) != nil {
			continue // older than the bug
		}
		if b.Fixed != nil && lndclient.AssertVersionCompatible(v, b.Fixed) == nil {
			continue // fixed
		}
		out = append(out, b)
	}

	return out
}
