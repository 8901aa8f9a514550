package scenarios

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// scaleCleanup bounds stopping everything at the end of make scale.
const scaleCleanup = 2 * time.Minute

// ScaleMain is `make scale`: it parses args, runs Scale on a network of
// its own until it ends or SIGINT or SIGTERM, prints the report and
// returns the exit code: 0 only if every payment was held, tracked after
// the restart and settled, and the ledger is clean.
func ScaleMain(args []string, stdout, stderr io.Writer) int {
	var cfg ScaleConfig
	var keep bool
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.N, "n", DefaultScaleN, "payments held at bob at once")
	fs.IntVar(&cfg.Channels, "channels", 0, fmt.Sprintf("alice -> bob "+
		"channels carrying them (0: one per %d)", PerChannelHTLCs))
	fs.Int64Var(&cfg.ChannelSat, "channel-sat", DefaultScaleChannelSat,
		"size of each of those channels, in sat")
	fs.Int64Var(&cfg.AmountSat, "amount", DefaultScaleAmountSat,
		"what each payment pays dave, in sat")
	fs.IntVar(&cfg.Concurrency, "concurrency", DefaultScaleConcurrency,
		"creates, releases and direct payments in flight")
	fs.IntVar(&cfg.Direct, "direct", 0, fmt.Sprintf("direct payments of "+
		"the baseline (0: min(n, %d), -1: none)", DefaultScaleDirectMax))
	fs.BoolVar(&keep, "keep", false, "keep the network's folder and logs "+
		"after a success (always kept after a failure)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.N < 1 {
		fmt.Fprintln(stderr, "scale: -n must be at least 1")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C the run stops what it started; a second one
	// ends it at once.
	go func() {
		<-ctx.Done()
		stop()
	}()

	start := time.Now()
	cfg.Progress = func(format string, args ...any) {
		fmt.Fprintf(stderr, "%7s  %s\n", time.Since(start).Round(time.Second),
			fmt.Sprintf(format, args...))
	}
	report, err := runScale(ctx, cfg, keep)
	if report != nil {
		report.Print(stdout)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "scale: interrupted; everything it "+
				"started is stopped")
		}
		fmt.Fprintln(stderr, "scale:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nscale run took %s\n", round(time.Since(start)))

	return 0
}

// runScale builds asynclspd, starts the network and the cast, runs Scale
// and stops everything.
func runScale(ctx context.Context, cfg ScaleConfig, keep bool) (_ *ScaleReport,
	err error) {

	bin, err := lsp.Build(ctx)
	if err != nil {
		return nil, err
	}
	defer lsp.RemoveBuild()

	cfg.Progress("starting btcd and four lnd nodes")
	net, err := regtest.Start(ctx, ScaleNetOptions(cfg))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil || keep {
			net.KeepDir()
			cfg.Progress("every log is in %s", net.Dir)
		}
		err = errors.Join(err, net.Close())
	}()
	cfg.Progress("network ready in %s: %s", round(net.ReadyIn), net.Dir)

	c, err := Assemble(ctx, net, ScaleCastOptions(cfg),
		func(ctx context.Context, o lsp.Options) (*lsp.Daemon, error) {
			o.Binary = bin
			return lsp.Start(ctx, o)
		})
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), scaleCleanup)
		defer cancel()
		err = errors.Join(err, c.Close(ctx))
	}()

	return Scale(ctx, c, cfg)
}
