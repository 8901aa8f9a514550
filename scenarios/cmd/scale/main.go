// Command scale is `make scale`: N payments held at once at bob's
// asynclspd on a real regtest network, and what that costs. See
// scenarios.Scale and `go run ./scenarios/cmd/scale -h`.
//
// Floor: top. Owns the process; imports only package scenarios.
package main

import (
	"os"

	"github.com/asynclsp/asynclsp/scenarios"
)

func main() {
	os.Exit(scenarios.ScaleMain(os.Args[1:], os.Stdout, os.Stderr))
}
