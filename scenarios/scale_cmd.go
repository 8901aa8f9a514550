package scenarios

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

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
	fs.IntVar(&cfg.HeldDirect, "held-direct", 0, fmt.Sprintf("direct "+
		"payments with the n held (0: min(direct, %d), -1: none)",
		DefaultScaleHeldDirectMax))
	fs.BoolVar(&keep, "keep", false, "keep the network's folder and logs "+
		"after a success (always kept after a failure)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.N < 1 {
		fmt.Fprintln(stderr, "scale: -n must be at least 1")
		return 2
	}

	ctx, stop := interruptible()
	defer stop()
	start := time.Now()
	cfg.Progress = progressTo(stderr, start)
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

// runScale runs Scale on a network of its own.
func runScale(ctx context.Context, cfg ScaleConfig, keep bool) (*ScaleReport, error) {
	return onNetwork(ctx, ScaleNetOptions(cfg), keep, cfg.Progress,
		func(context.Context, *regtest.Network) (Options, func(), error) {
			return ScaleCastOptions(cfg), func() {}, nil
		},
		func(ctx context.Context, c *Cast) (*ScaleReport, error) {
			return Scale(ctx, c, cfg)
		})
}
