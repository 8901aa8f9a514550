package regtest

import (
	"os"
	"path/filepath"
	"strings"
)

// FixForwardingPackageAckIndex names the fix of lnd's forwarding-package
// acknowledgements after a replay (scenarios/lndfix/fwdpkg-ack-index.patch).
const FixForwardingPackageAckIndex = "fwdpkg-ack-index"

// lndFixesFile lists, in a folder of binaries, the fixes its lnd was built
// with, one per line (scripts/lnd-fixed-src.sh writes it).
const lndFixesFile = "lnd-fixes"

// LndFixed reports whether the lnd in binDir was built with fix applied
// (`make regtest-bin LND_FIX=1`). A folder without the list holds lnd as
// released.
func LndFixed(binDir, fix string) bool {
	b, err := os.ReadFile(filepath.Join(binDir, lndFixesFile))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == fix {
			return true
		}
	}

	return false
}

// BinDir is the folder of the binaries the network runs.
func (n *Network) BinDir() string {
	return n.opts.BinDir
}
