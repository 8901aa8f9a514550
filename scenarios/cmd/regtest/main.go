// Command regtest starts ("up") and stops ("down") a regtest Lightning
// network to explore by hand: btcd and four lnd nodes, alice -> bob ->
// carol -> dave. `make regtest-up` and `make regtest-down` run it.
//
// Floor: top. Owns the process; imports only package regtest.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

func main() {
	// An interrupt during "up" stops whatever was started already.
	ctx, stop := signal.NotifyContext(
		context.Background(), os.Interrupt, syscall.SIGTERM,
	)
	defer stop()

	err := regtest.RunCommand(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "regtest:", err)
		stop()
		os.Exit(1)
	}
}
