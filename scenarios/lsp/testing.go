package lsp

import (
	"context"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	"testing"
	"time"
)

// startTimeout bounds StartT: the first call builds the binary.
const startTimeout = 5 * time.Minute

// StartT starts a daemon for a test and stops it (SIGTERM) when the test
// ends, failing the test if it does not stop cleanly. If the test failed,
// it logs where the daemon's log is, and its last lines; the log stays
// with the network's folder, which regtest.StartT keeps then.
func StartT(t testing.TB, opts Options) *Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()

	d, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Logf("asynclspd %s ready (pid %d): api %s, log %s", d.Name, d.PID(),
		d.APIURL, d.LogPath)

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("asynclspd %s: log %s ends:\n%s", d.Name, d.LogPath,
				proc.Tail(d.LogPath, 40))
		}
		ctx, cancel := context.WithTimeout(context.Background(),
			stopTimeout)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("%v", err)
		}
	})

	return d
}
