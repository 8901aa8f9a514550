package regtest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestEnv names the environment variable `make test` sets: with it, a test
// that needs the network fails if the binaries are missing, instead of
// being skipped.
const TestEnv = "ASYNCLSP_REGTEST"

// startTimeout bounds StartT's wait for a ready network.
const startTimeout = 3 * time.Minute

// timeoutGrace is how long before a test's deadline StartT marks the logs
// to be kept and says where they are: a test that times out never reaches
// its cleanup.
const timeoutGrace = 10 * time.Second

// StartT starts a network for a test and closes it when the test ends. It
// keeps the folder with every log if the test failed and logs where it is.
// It skips the test under -short, and when the binaries are missing unless
// $ASYNCLSP_REGTEST is 1 (make test), where it fails instead.
func StartT(t testing.TB, opts Options) *Network {
	t.Helper()

	if testing.Short() {
		t.Skip("regtest: needs a regtest network, skipped with -short")
	}
	opts = opts.withDefaults()
	if err := binariesMissing(opts.BinDir); err != nil {
		if os.Getenv(TestEnv) == "1" {
			t.Fatalf("regtest: %s=1 but %v", TestEnv, err)
		}
		t.Skipf("regtest: %v; `make test` builds them and runs this "+
			"test", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	net, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("regtest network ready in %v: %s",
		net.ReadyIn.Round(time.Millisecond), net.Dir)

	var watchdog *time.Timer
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			watchdog = time.AfterFunc(
				time.Until(deadline)-timeoutGrace, func() {
					net.KeepDir()
					fmt.Fprintf(os.Stderr, "regtest: %s is "+
						"about to time out; logs kept "+
						"in %s\n", t.Name(), net.Dir)
				},
			)
		}
	}

	t.Cleanup(func() {
		if watchdog != nil {
			watchdog.Stop()
		}
		if t.Failed() {
			net.KeepDir()
			t.Logf("regtest: test failed, logs kept in %s", net.Dir)
		}
		if err := net.Close(); err != nil {
			t.Errorf("regtest: close: %v", err)
		}
	})

	return net
}

// binariesMissing says why the network cannot start from binDir, or nil.
func binariesMissing(binDir string) error {
	if binDir == "" {
		return fmt.Errorf("$%s is not set", BinEnv)
	}

	return checkBinaries(binDir)
}
