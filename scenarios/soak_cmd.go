package scenarios

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// soakCleanup bounds stopping everything at the end of make soak.
const soakCleanup = 2 * time.Minute

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
	fs.StringVar(&logLevel, "loglevel", "info", "the daemons' log level")
	fs.BoolVar(&keep, "keep", false, "keep the network's folder and logs "+
		"after a success (always kept after a failure)")
	if err := fs.Parse(args); err != nil {
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
		fmt.Fprintf(stderr, "soak: replay with make soak SEED=%d FAULTS=%d "+
			"PAYMENTS=%d\n", cfg.Seed, cfg.Faults, cfg.Payments)
		return 1
	}
	fmt.Fprintf(stdout, "\nsoak took %s\n", round(time.Since(start)))

	return 0
}

// runSoak builds asynclspd, starts the network, the NATS cluster and the
// cast, runs Soak and stops everything.
func runSoak(ctx context.Context, cfg SoakConfig, logLevel string,
	keep bool) (_ *SoakReport, err error) {

	bin, err := lsp.Build(ctx)
	if err != nil {
		return nil, err
	}
	defer lsp.RemoveBuild()

	cfg.Progress("starting btcd and four lnd nodes")
	net, err := regtest.Start(ctx, SoakNetOptions())
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

	cluster, err := StartNATSCluster(ctx, filepath.Join(net.Dir, "nats"), 3)
	if err != nil {
		return nil, err
	}
	defer cluster.Close()
	cfg.Progress("NATS cluster ready: %v", cluster.URLs())

	c, err := Assemble(ctx, net, SoakCastOptions(cfg, cluster.URLs(), logLevel),
		func(ctx context.Context, o lsp.Options) (*lsp.Daemon, error) {
			o.Binary = bin
			return lsp.Start(ctx, o)
		})
	if err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), soakCleanup)
		defer cancel()
		err = errors.Join(err, c.Close(ctx))
	}()

	return Soak(ctx, c, cluster, cfg)
}
