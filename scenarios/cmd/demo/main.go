// Command demo is `make demo`: an async payment end to end on a real
// regtest network, told as it happens, then measured. See package demo and
// `go run ./scenarios/cmd/demo -h`.
//
// Floor: top. Owns the process; imports only package demo.
package main

import (
	"os"

	"github.com/asynclsp/asynclsp/scenarios/demo"
)

func main() {
	os.Exit(demo.Main(os.Args[1:], os.Stdout, os.Stderr))
}
