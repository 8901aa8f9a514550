package regtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// fakeBinDir returns a folder with executables named like the real ones.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range binaries {
		err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"),
			0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	return dir
}

func TestOptionsValidate(t *testing.T) {
	bin := fakeBinDir(t)
	ok := Options{BinDir: bin}.withDefaults()
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	if ok.AliceBobSat != DefaultChannelSat || ok.CarolDaveSat !=
		DefaultChannelSat || ok.CarolDavePushSat != DefaultPushSat {

		t.Fatalf("defaults: %+v", ok)
	}
	if o := (Options{BinDir: bin, NoPush: true}).withDefaults(); o.CarolDavePushSat != 0 ||
		o.validate() != nil {

		t.Fatalf("NoPush: %+v", o)
	}

	noExec := t.TempDir()
	for _, b := range binaries {
		if err := os.WriteFile(filepath.Join(noExec, b), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no bin dir", Options{}, "no binaries"},
		{"empty bin dir", Options{BinDir: t.TempDir()}, "lnd missing"},
		{"not executable", Options{BinDir: noExec}, "not an executable"},
		{"tiny channel", Options{BinDir: bin, AliceBobSat: 1000},
			"AliceBobSat 1000 outside"},
		{"wumbo channel", Options{BinDir: bin, BobCarolSat: 20_000_000},
			"BobCarolSat"},
		{"push all", Options{BinDir: bin, CarolDaveSat: 100_000,
			CarolDavePushSat: 100_000}, "CarolDavePushSat"},
		{"negative push", Options{BinDir: bin, CarolDavePushSat: -1},
			"CarolDavePushSat"},
		{"unknown node", Options{BinDir: bin, LndArgs: map[string][]string{
			"eve": {"--foo"}}}, `unknown node "eve"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(BinEnv, "")
			err := tc.opts.withDefaults().validate()
			if !errors.Is(err, ErrInvalidOptions) ||
				!strings.Contains(err.Error(), tc.want) {

				t.Fatalf("validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStartTSkipsWithoutBinaries(t *testing.T) {
	t.Setenv(TestEnv, "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		StartT(t, Options{BinDir: t.TempDir()})
		t.Error("StartT returned without binaries")
	})
	if !skipped {
		t.Fatal("StartT did not skip")
	}
	if err := binariesMissing(""); err == nil ||
		!strings.Contains(err.Error(), BinEnv) {

		t.Fatalf("binariesMissing(\"\") = %v", err)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"/bin/lncli", "--x=a b", "it's", "", "plain"})
	want := `/bin/lncli '--x=a b' 'it'\''s' '' plain`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestIsZombie(t *testing.T) {
	if !isZombie([]byte("42 (lnd (x)) Z 1 2 3")) ||
		isZombie([]byte("42 (lnd) S 1 2 3")) || isZombie([]byte("junk")) {

		t.Fatal("isZombie misreads /proc/<pid>/stat")
	}
}

func TestPrepareDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := prepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := prepareDir(dir); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("non-empty dir: %v", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st := State{
		Dir: dir, Btcctl: "btcctl -C x",
		Btcd:  Proc{PID: 10, Marker: "--datadir=x"},
		Nodes: []NodeState{{Name: Alice, PubKey: "02ab", Proc: Proc{PID: 11}}},
	}
	if err := writeState(st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Btcd != st.Btcd || len(got.Nodes) != 1 || got.Nodes[0] != st.Nodes[0] {
		t.Fatalf("got %+v", got)
	}
	if _, err := readState(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing state: %v", err)
	}
}

const sleeperEnv = "ASYNCLSP_TEST_SLEEPER"

// TestSleeperProcess is not a test: TestStopPID starts the test binary with
// it as the child to stop. Run directly, it returns at once.
func TestSleeperProcess(t *testing.T) {
	if os.Getenv(sleeperEnv) != "1" {
		return
	}
	time.Sleep(time.Minute)
}

// A process is only signaled when its command line carries the marker.
func TestStopPID(t *testing.T) {
	marker := "asynclsp-test-" + t.Name()
	// The test binary itself is the sleeper, with the marker as an argument:
	// a shell may exec its last command and lose a marker kept in a comment.
	cmd := exec.Command(os.Args[0], "-test.run=^TestSleeperProcess$", "--", marker)
	cmd.Env = append(os.Environ(), sleeperEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pid := cmd.Process.Pid
	if err := stopPID(ctx, "other", Proc{PID: pid, Marker: "not-it"}); err != nil {
		t.Fatal(err)
	}
	if !processMatches(pid, marker) {
		t.Fatal("a process with another marker was stopped")
	}
	if err := stopPID(ctx, "sleeper", Proc{PID: pid, Marker: marker}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("process still running after stopPID")
	}
}

func TestPoll(t *testing.T) {
	calls := 0
	err := poll(context.Background(), "third call", func(context.Context) (bool, error) {
		calls++
		return calls == 3, nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("poll: %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = poll(ctx, "never", func(context.Context) (bool, error) {
		return notYet("still %d", 7)
	})
	if !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "still 7") {

		t.Fatalf("poll timeout: %v", err)
	}

	err = poll(context.Background(), "dead", func(context.Context) (bool, error) {
		return false, errExited
	})
	if !errors.Is(err, errExited) {
		t.Fatalf("poll on exit: %v", err)
	}
}

// TestAnchorsSat: the anchor outputs are what the capacity leaves once the
// balances, the commitment fee and the HTLCs are counted, in whole anchors
// whatever millisatoshis the balances lost to rounding.
func TestAnchorsSat(t *testing.T) {
	for _, tc := range []struct {
		c    *lnrpc.Channel
		want int64
	}{
		{&lnrpc.Channel{Capacity: 1_000_000, LocalBalance: 990_000,
			RemoteBalance: 0, CommitFee: 9_670}, 330},
		{&lnrpc.Channel{Capacity: 1_000_000, LocalBalance: 489_669,
			RemoteBalance: 499_999, CommitFee: 9_670, PendingHtlcs: []*lnrpc.HTLC{
				{Amount: 1}}}, 660},
		{&lnrpc.Channel{Capacity: 1_000_000, LocalBalance: 990_000,
			RemoteBalance: 8_999, CommitFee: 1_000}, 0},
	} {
		if got := anchorsSat(tc.c); got != tc.want {
			t.Errorf("anchorsSat(%+v) = %d, want %d", tc.c, got, tc.want)
		}
	}
}
