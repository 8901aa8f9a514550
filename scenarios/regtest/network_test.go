package regtest

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
)

// The harness's promise to the scenarios: a network ready this fast.
const readyBudget = 30 * time.Second

// TestNetwork starts a network with a small channel to dave, checks what a
// scenario relies on, takes dave offline and back, and checks that Close
// leaves no process behind.
func TestNetwork(t *testing.T) {
	var procs []Proc
	t.Cleanup(func() {
		for _, p := range procs {
			if processMatches(p.PID, p.Marker) {
				t.Errorf("pid %d (%s) still running after Close",
					p.PID, p.Marker)
			}
		}
	})

	net := StartT(t, Options{CarolDaveSat: 200_000, CarolDavePushSat: 50_000})
	if net.ReadyIn > readyBudget {
		t.Logf("network took %v, over the %v budget (machine busy?)",
			net.ReadyIn, readyBudget)
	}
	st := net.state()
	procs = append(procs, st.Btcd)
	for _, n := range st.Nodes {
		procs = append(procs, n.Proc)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tip, err := net.Height(ctx)
	must(t, err)
	ports := make(map[int]bool)
	for _, node := range net.Nodes() {
		for _, p := range []int{node.RPCPort, node.P2PPort} {
			if ports[p] {
				t.Fatalf("port %d used twice", p)
			}
			ports[p] = true
		}
		for _, f := range []string{node.TLSCertPath, node.MacaroonPath,
			node.LogPath} {

			if _, err := os.Stat(f); err != nil {
				t.Fatalf("%s: %v", node.Name, err)
			}
		}
		// The printed lncli line works.
		var info struct {
			PubKey string `json:"identity_pubkey"`
			Height uint32 `json:"block_height"`
		}
		runJSON(t, append(node.Lncli(), "getinfo"), &info)
		if info.PubKey != node.PubKey.String() || info.Height != tip {
			t.Fatalf("%s: lncli getinfo %+v", node.Name, info)
		}
	}
	out := run(t, append(strings.Fields(net.BtcctlCommand()),
		"getblockcount"))
	if out != strconv.Itoa(int(tip)) {
		t.Fatalf("btcctl getblockcount %q, want %d", out, tip)
	}

	small, err := net.Carol.Channel(ctx, net.Dave)
	must(t, err)
	if small.Capacity != 200_000 || !small.Private ||
		small.ChanID != net.CarolDaveChan {

		t.Fatalf("carol-dave: %+v", small)
	}
	daveSide, err := net.Dave.Channel(ctx, net.Carol)
	must(t, err)
	if daveSide.LocalBalance != 50_000 {
		t.Fatalf("dave's balance %d, want the 50000 pushed",
			daveSide.LocalBalance)
	}

	must(t, net.Mine(ctx, 3))
	if h, _ := net.Height(ctx); h != tip+3 {
		t.Fatalf("height %d after mining 3 on %d", h, tip)
	}

	testDaveOffline(t, net)
}

// testDaveOffline: dave goes offline, blocks are mined, dave comes back with
// the same ports and client, and can be paid again.
func testDaveOffline(t *testing.T, net *Network) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	oldPID := net.Dave.PID()

	must(t, net.Dave.Stop(ctx))
	if net.Dave.Running() {
		t.Fatal("dave running after Stop")
	}
	_, err := net.Carol.WaitChannel(ctx, net.Dave, "inactive",
		func(c lnd.Channel) bool { return !c.Active })
	must(t, err)

	// Mine skips the stopped node.
	must(t, net.Mine(ctx, 2))
	tip, err := net.Height(ctx)
	must(t, err)

	must(t, net.Dave.Start(ctx))
	if net.Dave.PID() == oldPID {
		t.Fatal("same pid after restart")
	}
	info, err := net.Dave.Client.NodeInfo(ctx)
	must(t, err)
	if info.BlockHeight != tip {
		t.Fatalf("dave at %d after Start, want %d", info.BlockHeight, tip)
	}
	_, err = net.Carol.WaitChannel(ctx, net.Dave, "active",
		func(c lnd.Channel) bool { return c.Active })
	must(t, err)

	inv, err := net.Dave.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: 10_000_000, Private: true, Expiry: time.Hour,
	})
	must(t, err)
	// The route hint's policy may need a moment after the restart.
	err = poll(ctx, "bob paying dave", func(ctx context.Context) (bool, error) {
		sub, err := net.Bob.Client.SendPayment(ctx, lnd.SendPaymentRequest{
			Invoice: inv.PaymentRequest, FeeLimitMsat: 100_000,
			Timeout: 10 * time.Second,
		})
		if err != nil {
			return false, err
		}
		defer sub.Close()
		for p := range sub.Updates() {
			if p.Status == lnd.PaymentSucceeded {
				return true, nil
			}
			if p.Status == lnd.PaymentFailed {
				return notYet("failed: %v", p.FailureReason)
			}
		}

		return false, sub.Err()
	})
	must(t, err)
	must(t, net.WaitNoPendingHTLCs(ctx))
}

// TestUpDown runs what make regtest-up and regtest-down run.
func TestUpDown(t *testing.T) {
	if testing.Short() {
		t.Skip("regtest: needs a regtest network, skipped with -short")
	}
	opts := Options{}.withDefaults()
	if err := binariesMissing(opts.BinDir); err != nil {
		if os.Getenv(TestEnv) == "1" {
			t.Fatalf("regtest: %s=1 but %v", TestEnv, err)
		}
		t.Skipf("regtest: %v", err)
	}

	// Not t.TempDir: the logs must outlive a failed test.
	parent, err := os.MkdirTemp("", "asynclsp-updown-")
	must(t, err)
	dir := filepath.Join(parent, "net")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		_ = Down(context.Background(), dir)
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		_ = os.RemoveAll(parent)
	})

	st, err := Up(ctx, Options{Dir: dir})
	must(t, err)
	all := append([]Proc{st.Btcd}, nodeProcs(st)...)
	for _, p := range all {
		if !processMatches(p.PID, p.Marker) {
			t.Fatalf("pid %d (%s) not running after Up", p.PID, p.Marker)
		}
	}
	var info struct {
		Alias string `json:"alias"`
	}
	runJSON(t, append(strings.Fields(st.Nodes[3].Lncli), "getinfo"), &info)
	if info.Alias != Dave {
		t.Fatalf("the printed lncli line reached %q", info.Alias)
	}

	_, err = Up(ctx, Options{Dir: dir})
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second Up: %v, want ErrRunning", err)
	}

	must(t, Down(ctx, dir))
	for _, p := range all {
		if processMatches(p.PID, p.Marker) {
			t.Fatalf("pid %d (%s) running after Down", p.PID, p.Marker)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err,
		os.ErrNotExist) {

		t.Fatalf("state file after Down: %v", err)
	}
	if _, err := os.Stat(st.Nodes[0].LogPath); err != nil {
		t.Fatalf("logs gone after Down: %v", err)
	}
	if err := Down(ctx, dir); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Down: %v, want ErrNotRunning", err)
	}

	// Up again reuses the folder of the stopped network.
	st, err = Up(ctx, Options{Dir: dir})
	must(t, err)
	must(t, Down(ctx, dir))
	for _, p := range append([]Proc{st.Btcd}, nodeProcs(st)...) {
		if processMatches(p.PID, p.Marker) {
			t.Fatalf("pid %d (%s) running after Down", p.PID, p.Marker)
		}
	}
}

func nodeProcs(st State) []Proc {
	var ps []Proc
	for _, n := range st.Nodes {
		ps = append(ps, n.Proc)
	}

	return ps
}

// run runs a command line and returns its trimmed output.
func run(t *testing.T, args []string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}

	return strings.TrimSpace(string(out))
}

// runJSON runs a command line and decodes its JSON output into v.
func runJSON(t *testing.T, args []string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(run(t, args)), v); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
