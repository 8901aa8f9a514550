package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// TestDaemonStopWithNATSDown: carol's receiver-role asynclspd uses bob's
// embedded NATS. Bob stops, so carol's NATS is gone; SIGTERM then stops
// carol cleanly, exit 0, whether it was running (reconnecting) or still
// starting (waiting for its first connection). A real failure, with no
// signal (carol's inbound stream missing on a new server), still exits 1.
func TestDaemonStopWithNATSDown(t *testing.T) {
	asynclspdBinary(t) // build first: the network is not kept waiting
	net := regtest.StartT(t, regtest.Options{})

	natsAddr := freeAddr(t)
	bob := newDaemonProc(t, "bob", net.Bob, false)
	carol := newDaemonProc(t, "carol", net.Carol, true)
	bob.configure(t, RoleSender, "nats.embeddedlisten="+natsAddr)
	carol.configure(t, RoleReceiver, "nats.url=nats://"+natsAddr+"\nnats.createstream=true")
	bob.start(t)
	carol.start(t)

	// Running, reconnecting: the stop is clean.
	bob.stop(t)
	waitLog(t, carol.p, "disconnected from NATS, reconnecting")
	carol.stop(t)
	wantCleanStop(t, carol.p)

	// Starting, waiting for NATS: the stop is clean too.
	carol.p = startProc(t, carol.home, "--datadir="+carol.dir, "--configfile="+carol.conf)
	waitLog(t, carol.p, "cannot reach NATS, retrying")
	carol.stop(t)
	wantCleanStop(t, carol.p)

	// A real failure without a signal: a server that has no inbound
	// stream for carol, and carol not allowed to create it.
	other := testkit.StartNATS(t)
	carol.configure(t, RoleReceiver, "nats.url="+other.ClientURL())
	carol.p = startProc(t, carol.home, "--datadir="+carol.dir, "--configfile="+carol.conf)
	if code := carol.p.wait(t, 90*time.Second); code != 1 {
		t.Fatalf("carol without a stream: exit %d, want 1\n%s", code,
			tail(carol.p.stderr.String(), 40))
	}
	log := carol.p.stderr.String()
	if !strings.Contains(log, "stopping after a failure") ||
		!strings.Contains(log, "does not exist") {
		t.Fatalf("carol's failure is not in its log:\n%s", tail(log, 40))
	}
}

// waitLog waits until the process has logged want.
func waitLog(t *testing.T, p *proc, want string) {
	t.Helper()
	eventually(t, time.Minute, "log line "+want, func() error {
		select {
		case <-p.done:
			t.Fatalf("asynclspd exited: %v\n%s", p.err, tail(p.stderr.String(), 40))
		default:
		}
		if !strings.Contains(p.stderr.String(), want) {
			return errors.New("not logged yet")
		}
		return nil
	})
}

// wantCleanStop fails unless the process logged a clean stop and no
// failure on its way out.
func wantCleanStop(t *testing.T, p *proc) {
	t.Helper()
	log := p.stderr.String()
	if !strings.Contains(log, `level=INFO msg="asynclspd stopped"`) ||
		strings.Contains(log, "stopping after a failure") {
		t.Fatalf("not a clean stop:\n%s", tail(log, 40))
	}
}
