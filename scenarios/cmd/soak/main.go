// Command soak is `make soak`: a steady stream of async payments on a real
// regtest network while a seeded fault injector strikes, then a ledger
// check of every lnd. See scenarios.Soak and `go run ./scenarios/cmd/soak
// -h`.
//
// Floor: top. Owns the process; imports only package scenarios.
package main

import (
	"os"

	"github.com/asynclsp/asynclsp/scenarios"
)

func main() {
	os.Exit(scenarios.SoakMain(os.Args[1:], os.Stdout, os.Stderr))
}
