// Package demo is `make demo`: a real regtest network, asynclspd for bob
// (sender LSP) and carol (receiver LSP), and the story of one async payment
// told as it happens, with timings and balances: alice pays dave while he
// is offline, the payment is held, dave's wallet is woken by a signed
// webhook, blocks pass, dave comes back and releases it, it settles, and
// the money moved exactly once. Then release-to-settle is measured against
// a direct payment over the same route.
//
// The demo exits 0 only if every check held, and stops everything it
// started, also on failure and on Ctrl-C.
//
// Floor: top. Owns the demo's story and checks; it imports the scenarios'
// harness and the roles' clients.
package demo

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

	"github.com/asynclsp/asynclsp/scenarios"
	"github.com/asynclsp/asynclsp/scenarios/lsp"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Config is what the demo's flags choose.
type Config struct {
	// AmountSat is what alice pays dave, in the story and each measured
	// payment.
	AmountSat int64

	// Pairs is how many async and direct payments the measurement makes
	// each; 0 skips it.
	Pairs int

	// MeasureOnly skips the story.
	MeasureOnly bool

	// Keep keeps the network's folder, with every log, after a success
	// (it is always kept after a failure).
	Keep bool

	// HTTPWallet has dave's wallet use carol's HTTP API with a token and
	// BIP-340 signatures, instead of the standard path: LSPS0 over his
	// lnd's connection and signmessage.
	HTTPWallet bool
}

// ErrChecks: some check of the story did not hold.
var ErrChecks = errors.New("checks failed")

// cleanupTimeout bounds stopping everything at the end.
const cleanupTimeout = 2 * time.Minute

// Main runs the demo with command-line args until it ends or SIGINT or
// SIGTERM, and returns the exit code: 0 only if every step checked out.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg := Config{}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&cfg.AmountSat, "amount", 25_000, "amount alice pays dave, in sat")
	fs.IntVar(&cfg.Pairs, "pairs", 20, "async and direct payments measured, each (0: no measurement)")
	fs.BoolVar(&cfg.MeasureOnly, "measure-only", false, "skip the story, only measure")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the network's folder and logs after a success")
	fs.BoolVar(&cfg.HTTPWallet, "http-wallet", false, "dave's wallet uses carol's HTTP API and BIP-340 "+
		"instead of LSPS0 over his lnd and signmessage")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.AmountSat <= 0 || cfg.Pairs < 0 || (cfg.MeasureOnly && cfg.Pairs == 0) {
		fmt.Fprintln(stderr, "demo: -amount must be positive, -pairs at "+
			"least 0, and at least 1 with -measure-only")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C the demo stops what it started; a second
	// one ends it at once (the kernel kills the children then).
	go func() {
		<-ctx.Done()
		stop()
	}()

	if err := Run(ctx, stdout, cfg); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "demo: interrupted; everything it "+
				"started is stopped")
		}
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}

	return 0
}

// Run builds asynclspd, starts the network and both daemons, tells the
// story and measures, then stops everything it started. It fails if a step
// failed or a check did not hold.
func Run(ctx context.Context, w io.Writer, cfg Config) (err error) {
	t := newTeller(w)
	fmt.Fprintln(w, "asynclsp demo: alice pays dave, who is offline, "+
		"through bob (her LSP) and carol (his)")
	fmt.Fprintln(w, "alice -> bob (sender LSP, asynclspd) -> carol "+
		"(receiver LSP, asynclspd) -> dave")

	t.heading("Setting up")
	step := time.Now()
	bin, err := lsp.Build(ctx)
	if err != nil {
		return err
	}
	defer lsp.RemoveBuild()
	t.say("asynclspd built in %s", secs(time.Since(step)))

	t.say("starting btcd and four lnd nodes on regtest (about 20 s)")
	net, err := regtest.Start(ctx, regtest.Options{})
	if err != nil {
		return err
	}
	defer func() {
		keep := err != nil || cfg.Keep
		if keep {
			net.KeepDir()
		}
		t.say("stopping lnd and btcd")
		if cerr := net.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if keep {
			t.say("every log is in %s", net.Dir)
		}
	}()
	t.say("network ready in %s: %s", secs(net.ReadyIn), net.Dir)
	for _, n := range net.Nodes() {
		t.detail("%-5s %s  lnd pid %d", n.Name, n.PubKey, n.PID())
	}
	t.detail("channels: alice-bob, bob-carol public; carol-dave private " +
		"(10M sat each, carol pushed 2M to dave)")

	step = time.Now()
	cast, err := scenarios.Assemble(ctx, net, scenarios.Options{
		Webhooks: true, Invoices: cfg.Pairs + 5, Stock: !cfg.HTTPWallet,
	}, func(ctx context.Context, o lsp.Options) (*lsp.Daemon, error) {
		o.Binary = bin
		return lsp.Start(ctx, o)
	})
	if err != nil {
		return err
	}
	defer func() {
		t.say("stopping both asynclspd")
		ctx, cancel := context.WithTimeout(context.Background(),
			cleanupTimeout)
		defer cancel()
		err = errors.Join(err, cast.Close(ctx))
	}()
	for _, d := range []*lsp.Daemon{cast.Bob, cast.Carol} {
		t.say("asynclspd for %s running (pid %d): API %s, log %s", d.Name,
			d.PID(), d.APIURL, d.LogPath)
	}
	t.detail("bob runs the sender role and the embedded NATS server (%s); "+
		"carol the receiver role, on bob's NATS", cast.Bob.NATSURL)
	if cast.Stock != nil {
		t.say("dave's wallet speaks LSPS0 to carol over his lnd's connection "+
			"(SendCustomMessage, type 37913): lsps5.set_webhook %s, then "+
			"asynclsp.add_invoices with %d invoices made on his own lnd: %d accepted",
			cast.Hooks.URL, len(cast.Uploaded.Results), cast.Uploaded.Accepted)
		t.detail("no HTTP and no token: carol knows dave by his node id, " +
			"authenticated by the Lightning connection (BOLT8)")
	} else {
		t.say("dave's wallet registered dave's node key with carol (webhook "+
			"%s) and uploaded %d invoices made on his own lnd: %d accepted",
			cast.Hooks.URL, len(cast.Uploaded.Results), cast.Uploaded.Accepted)
	}
	t.detail("set up in %s", secs(time.Since(step)))

	amount := lnwire.MilliSatoshi(cfg.AmountSat * 1000)
	if !cfg.MeasureOnly {
		if err := tellStory(ctx, t, cast, amount); err != nil {
			return err
		}
	}
	if cfg.Pairs > 0 {
		if err := measure(ctx, t, cast, cfg.Pairs, amount); err != nil {
			return err
		}
	}

	t.heading("Result")
	if len(t.failed) > 0 {
		for _, f := range t.failed {
			t.detail("✗ %s", f)
		}
		return fmt.Errorf("%w: %d", ErrChecks, len(t.failed))
	}
	t.say("every check held")

	return nil
}
