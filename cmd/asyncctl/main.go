// Command asyncctl is the command line of asynclspd, in the manner of
// lncli: `asyncctl --help` lists its commands.
//
// Floor: top. Owns the process (signals, exit code); imports only package ctl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
