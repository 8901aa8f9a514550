package scenarios

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// commandCleanup bounds stopping everything at the end of make scale or
// make soak.
const commandCleanup = 2 * time.Minute

// interruptible is the context of a make target: the first SIGINT or
// SIGTERM ends it, and the run stops what it started; a second one ends
// the process at once.
func interruptible() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()

	return ctx, stop
}

// progressTo prints a run's progress lines to w, each with the time since
// start.
func progressTo(w io.Writer, start time.Time) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(w, "%7s  %s\n", time.Since(start).Round(time.Second),
			fmt.Sprintf(format, args...))
	}
}

// onNetwork is what make scale and make soak share: it builds asynclspd,
// starts a regtest network with netOpts, lets prepare start what else the
// run needs on it and name the cast's options (its cleanup runs last),
// assembles the cast, runs run and stops everything. The network's folder
// is kept after a failure, or with keep.
func onNetwork[R any](ctx context.Context, netOpts regtest.Options, keep bool,
	progress func(format string, args ...any),
	prepare func(ctx context.Context, net *regtest.Network) (Options, func(), error),
	run func(ctx context.Context, c *Cast) (R, error)) (_ R, err error) {

	var none R
	bin, err := lsp.Build(ctx)
	if err != nil {
		return none, err
	}
	defer lsp.RemoveBuild()

	progress("starting btcd and four lnd nodes")
	net, err := regtest.Start(ctx, netOpts)
	if err != nil {
		return none, err
	}
	defer func() {
		if err != nil || keep {
			net.KeepDir()
			progress("every log is in %s", net.Dir)
		}
		err = errors.Join(err, net.Close())
	}()
	progress("network ready in %s: %s", round(net.ReadyIn), net.Dir)

	opts, cleanup, err := prepare(ctx, net)
	if err != nil {
		return none, err
	}
	defer cleanup()
	c, err := Assemble(ctx, net, opts,
		func(ctx context.Context, o lsp.Options) (*lsp.Daemon, error) {
			o.Binary = bin
			return lsp.Start(ctx, o)
		})
	if err != nil {
		return none, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), commandCleanup)
		defer cancel()
		err = errors.Join(err, c.Close(ctx))
	}()

	return run(ctx, c)
}
