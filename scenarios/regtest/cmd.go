package regtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// DefaultUpDir is where `regtest up` puts its network unless -dir says
// otherwise.
func DefaultUpDir() string {
	return filepath.Join(os.TempDir(), "asynclsp-regtest")
}

// RunCommand runs the regtest-up / regtest-down program: "up" starts a
// detached network and prints how to reach each node, "down" stops it.
func RunCommand(ctx context.Context, args []string, stdout,
	stderr io.Writer) error {

	fs := flag.NewFlagSet("regtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", DefaultUpDir(), "folder of the network")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: regtest [-dir folder] up|down\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want one command: up or down")
	}

	switch fs.Arg(0) {
	case "up":
		log := slog.New(slog.NewTextHandler(
			stderr, &slog.HandlerOptions{Level: slog.LevelInfo},
		))
		st, err := Up(ctx, Options{Dir: *dir, Logger: log})
		if err != nil {
			return err
		}
		printState(stdout, st)

		return nil

	case "down":
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		err := Down(ctx, *dir)
		if errors.Is(err, ErrNotRunning) {
			fmt.Fprintf(stdout, "no regtest network is running in "+
				"%s\n", *dir)

			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "regtest network stopped; logs stay in %s\n",
			*dir)

		return nil

	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}
}

// printState tells a person how to use a network Up started.
func printState(w io.Writer, st State) {
	fmt.Fprintf(w, "regtest network up in %s\n\n", st.Dir)
	fmt.Fprintf(w, "mine a block:\n  %s generate 1\n\n", st.Btcctl)
	for _, n := range st.Nodes {
		fmt.Fprintf(w, "%s  %s  rpc %s  p2p %s  pid %d\n  %s\n", n.Name,
			n.PubKey, n.RPC, n.P2P, n.Proc.PID, n.Lncli)
	}
	fmt.Fprintf(w, "\nstop it: make regtest-down\n")
}
