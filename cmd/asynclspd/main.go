// Command asynclspd is the asynclsp daemon: the sender role, the receiver
// role, or both, next to one lnd. See the README and `asynclspd --help`.
//
// Floor: top. Owns the process (arguments, exit code); imports only package daemon.
package main

import (
	"os"

	"github.com/asynclsp/asynclsp/cmd/asynclspd/daemon"
)

func main() {
	os.Exit(daemon.Main(os.Args[1:]))
}
