package scenarios

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// SoakMain is `make soak`: it parses args, prints the seed, runs Soak on a
// network of its own until it ends or SIGINT or SIGTERM, prints the report
// and returns the exit code: 0 only if the ledgers show no violation,
// every payment ended at bob and everything struck came back.
func SoakMain(args []string, stdout, stderr io.Writer) int {
	var (
		cfg      SoakConfig
		keep     bool
		logLevel string
	)
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the schedule (0: from the clock); "+
		"the same seed and sizes replay the same schedule")
	fs.IntVar(&cfg.Faults, "faults", DefaultSoakFaults, "faults the injector strikes")
	fs.IntVar(&cfg.Payments, "payments", DefaultSoakPayments, "async payments in the stream")
	fs.IntVar(&cfg.Senders, "senders", DefaultSoakSenders, "wallets at bob creating them")
	fs.DurationVar(&cfg.Every, "every", DefaultSoakEvery, "mean time between two faults")
	fs.IntVar(&cfg.InFlight, "inflight", DefaultSoakInFlight,
		"payments being created, paid or released at once")
	fs.DurationVar(&cfg.Settle, "settle", DefaultSoakSettle,
		"how long everything may take to end once the injector stopped")
	skip := fs.String("skip", "", "kinds of fault to leave out, comma-separated "+
		"(e.g. lnd_bob; the plan of a seed changes with it)")
	fs.StringVar(&logLevel, "loglevel", "info", "the daemons' log level")
	fs.BoolVar(&keep, "keep", false, "keep the network's folder and logs "+
		"after a success (always kept after a failure)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if cfg.Skip, err = ParseFaultKinds(*skip); err != nil {
		fmt.Fprintln(stderr, "soak: -skip:", err)
		return 2
	}
	if cfg.Faults < 1 || cfg.Payments < 1 {
		fmt.Fprintln(stderr, "soak: -faults and -payments must be at least 1")
		return 2
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(stdout, "seed %d\n", cfg.Seed)

	ctx, stop := interruptible()
	defer stop()
	start := time.Now()
	cfg.Progress = progressTo(stderr, start)
	report, err := runSoak(ctx, cfg, logLevel, keep)
	if report != nil {
		report.Print(stdout)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "soak: interrupted; everything it "+
				"started is stopped")
		}
		fmt.Fprintln(stderr, "soak:", err)
		fmt.Fprintf(stderr, "soak: replay with %s\n", cfg.Plan().Replay())
		return 1
	}
	fmt.Fprintf(stdout, "\nsoak took %s\n", round(time.Since(start)))

	return 0
}

// runSoak runs Soak on a network and a 3-node NATS cluster of its own.
func runSoak(ctx context.Context, cfg SoakConfig, logLevel string,
	keep bool) (*SoakReport, error) {

	var cluster *NATSCluster
	return onNetwork(ctx, SoakNetOptions(), keep, cfg.Progress,
		func(ctx context.Context, net *regtest.Network) (Options, func(), error) {
			var err error
			cluster, err = StartNATSCluster(ctx, filepath.Join(net.Dir, "nats"), 3)
			if err != nil {
				return Options{}, nil, err
			}
			cfg.Progress("NATS cluster ready: %v", cluster.URLs())
			return SoakCastOptions(cfg, cluster.URLs(), logLevel), cluster.Close, nil
		},
		func(ctx context.Context, c *Cast) (*SoakReport, error) {
			return Soak(ctx, c, cluster, cfg)
		})
}
