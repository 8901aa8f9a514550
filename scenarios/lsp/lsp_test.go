package lsp

import (
	"context"
	"errors"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asynclspd/daemon"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// fakeNode is an lnd node as far as the configuration is concerned: its
// files exist, nothing listens.
func fakeNode(t *testing.T, name string) *regtest.Node {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n := &regtest.Node{
		Name: name, RPCPort: 10009, Dir: dir,
		TLSCertPath:  filepath.Join(dir, "tls.cert"),
		MacaroonPath: filepath.Join(dir, "admin.macaroon"),
	}
	n.PubKey[0] = 2
	n.PubKey[32] = 1
	for _, f := range []string{n.TLSCertPath, n.MacaroonPath} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	return n
}

// TestConfigFileLoads checks that asynclspd reads the file Start writes as
// meant: every option lands where it should.
func TestConfigFileLoads(t *testing.T) {
	node := fakeNode(t, "bob")
	tests := []struct {
		name  string
		opts  Options
		check func(*testing.T, *daemon.Config)
	}{{
		name: "sender with embedded NATS",
		opts: Options{Node: node, Roles: []string{RoleSender}, Settings: []string{
			"sender.hold-cltv-delta=400",
			"sender.quick-retry=200ms",
			"sender.quick-retry=1s",
		}},
		check: func(t *testing.T, c *daemon.Config) {
			if !slices.Equal(c.Roles, []string{"sender"}) ||
				c.NATS.EmbeddedListen != "127.0.0.1:4003" ||
				len(c.NATS.URLs) != 0 || c.Sender.HoldCltvDelta != 400 ||
				!slices.Equal(c.Sender.QuickRetries,
					[]time.Duration{200 * time.Millisecond, time.Second}) {

				t.Fatalf("%+v", c)
			}
		},
	}, {
		name: "receiver on another daemon's NATS",
		opts: Options{Node: node, Roles: []string{RoleReceiver},
			NATSURL: "nats://127.0.0.1:4222", CreateStream: true,
			Settings: []string{"receiver.webhook.cooldown=1s"}},
		check: func(t *testing.T, c *daemon.Config) {
			if !slices.Equal(c.Roles, []string{"receiver"}) ||
				!slices.Equal(c.NATS.URLs, []string{"nats://127.0.0.1:4222"}) ||
				!c.NATS.CreateStream ||
				c.Receiver.Webhook.Cooldown != time.Second {

				t.Fatalf("%+v", c)
			}
		},
	}, {
		name: "both roles by default",
		opts: Options{Node: node},
		check: func(t *testing.T, c *daemon.Config) {
			if !c.Has(RoleSender) || !c.Has(RoleReceiver) {
				t.Fatalf("roles %v", c.Roles)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Dir = t.TempDir()
			o = o.withDefaults()
			must(t, o.validate())
			path := filepath.Join(o.Dir, "asynclspd.conf")
			conf := configFile(o, ports{api: 4001, ops: 4002, nats: 4003})
			must(t, os.WriteFile(path, []byte(conf), 0o600))

			cfg, err := daemon.LoadConfig([]string{"--configfile=" + path})
			if err != nil {
				t.Fatalf("%v\n%s", err, conf)
			}
			if cfg.DataDir != o.Dir || cfg.Network != "regtest" ||
				cfg.Lnd.Host != node.RPCAddr() ||
				cfg.Lnd.MacaroonPath != node.MacaroonPath ||
				cfg.API.Listen != "127.0.0.1:4001" ||
				cfg.Ops.Listen != "127.0.0.1:4002" || cfg.LogLevel != "debug" {

				t.Fatalf("%+v\n%s", cfg, conf)
			}
			tc.check(t, cfg)
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	node := fakeNode(t, "carol")
	o := Options{Node: node}.withDefaults()
	if o.Name != "carol" || o.Dir != filepath.Join(filepath.Dir(node.Dir),
		"asynclspd-carol") {

		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range []Options{
		{},
		{Node: node, Roles: []string{"relay"}},
		{Node: node, Settings: []string{"no value"}},
		{Node: node, Settings: []string{"a=1\nb=2"}},
	} {
		if err := bad.withDefaults().validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {

		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`# HELP asynclsp_sender_releases_total Releases.
# TYPE asynclsp_sender_releases_total counter
asynclsp_sender_releases_total{verdict="accepted"} 3
asynclsp_sender_releases_total{verdict="rejected"} 2
asynclsp_sender_releases_total_other{verdict="rejected"} 7
asynclsp_sender_holds{state="HELD"} 1
asynclsp_sender_holds{state="SETTLED"} 4
`))
	}))
	defer srv.Close()
	d := &Daemon{Name: "bob", OpsURL: srv.URL, http: srv.Client()}
	ctx := context.Background()

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"asynclsp_sender_releases_total", []string{"verdict", "rejected"}, 2},
		{"asynclsp_sender_releases_total", nil, 5},
		{"asynclsp_sender_releases_total", []string{"verdict", "stale"}, 0},
		{"asynclsp_sender_holds", []string{"state", "SETTLED"}, 4},
		{"asynclsp_sender_losses_total", nil, 0},
	} {
		got, err := d.Metric(ctx, tc.name, tc.labels...)
		if err != nil || got != tc.want {
			t.Errorf("%s %v = %v, %v; want %v", tc.name, tc.labels, got,
				err, tc.want)
		}
	}
	if _, err := d.Metric(ctx, "x", "odd"); err == nil {
		t.Error("odd labels accepted")
	}
}

// TestHeapAfterGC reads HeapInuse from the profile of a real handler, and
// fails clearly where the profiler is not served.
func TestHeapAfterGC(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	d := &Daemon{Name: "bob", OpsURL: srv.URL, http: srv.Client()}
	heap, err := d.HeapAfterGC(context.Background())
	if err != nil || heap <= 0 {
		t.Fatalf("HeapAfterGC = %d, %v", heap, err)
	}

	off := httptest.NewServer(http.NotFoundHandler())
	defer off.Close()
	d = &Daemon{Name: "bob", OpsURL: off.URL, http: off.Client()}
	if _, err := d.HeapAfterGC(context.Background()); err == nil ||
		!strings.Contains(err.Error(), "ops.pprof") {

		t.Fatalf("HeapAfterGC without pprof = %v", err)
	}
}

// TestStartReportsEarlyExit: a daemon that dies at start is reported with
// the end of its log, and its log keeps a header per start.
func TestStartReportsEarlyExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "asynclspd")
	script := "#!/bin/sh\necho \"configuration: lnd.host: boom ($1)\" >&2\nexit 2\n"
	must(t, os.WriteFile(bin, []byte(script), 0o755))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Start(ctx, Options{Node: fakeNode(t, "bob"), Binary: bin})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") ||
		!strings.Contains(err.Error(), "boom (--configfile=") {

		t.Fatalf("Start = %v", err)
	}
}

// TestStopAndKill runs a stand-in that handles SIGTERM like asynclspd:
// Stop waits for a clean exit, Kill for death, and a process that exits on
// its own is reported by Stop.
func TestStopAndKill(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sleeper")
	script := "#!/bin/sh\ntrap 'exit 0' TERM\necho trapped\n" +
		"while :; do sleep 0.05; done\n"
	must(t, os.WriteFile(bin, []byte(script), 0o755))
	d := &Daemon{Name: "t", LogPath: filepath.Join(dir, "log"),
		proc: &proc.Process{Name: "sleeper", Path: bin, LogPath: filepath.Join(dir, "log")}}
	ctx := context.Background()

	must(t, d.proc.Start("=== start 1"))
	if !d.Running() || d.PID() == 0 {
		t.Fatal("not running")
	}
	waitLog(t, d.LogPath, 1)
	must(t, d.Stop(ctx))
	if d.Running() {
		t.Fatal("running after Stop")
	}
	must(t, d.Stop(ctx)) // again: nothing to do

	must(t, d.proc.Start("=== start 2"))
	must(t, d.Kill())
	if d.Running() {
		t.Fatal("running after Kill")
	}
	must(t, d.Stop(ctx))

	exits := filepath.Join(dir, "exits")
	must(t, os.WriteFile(exits, []byte("#!/bin/sh\nexit 3\n"), 0o755))
	d.proc.Path = exits
	d.mu.Lock()
	d.stopped = false
	d.mu.Unlock()
	must(t, d.proc.Start("=== start 3"))
	must(t, d.proc.Wait(ctx))
	if err := d.Stop(ctx); err == nil || !strings.Contains(err.Error(),
		"exited on its own") {

		t.Fatalf("Stop after a crash = %v", err)
	}

	log, err := os.ReadFile(d.LogPath)
	must(t, err)
	if strings.Count(string(log), "=== start") != 3 {
		t.Fatalf("log:\n%s", log)
	}
}

// TestRelaunch: Relaunch starts a stopped daemon again without waiting
// for it, and refuses one that runs.
func TestRelaunch(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sleeper")
	script := "#!/bin/sh\ntrap 'exit 0' TERM\necho trapped\n" +
		"while :; do sleep 0.05; done\n"
	must(t, os.WriteFile(bin, []byte(script), 0o755))
	d := &Daemon{Name: "t", LogPath: filepath.Join(dir, "log"),
		proc: &proc.Process{Name: "sleeper", Path: bin, LogPath: filepath.Join(dir, "log")}}
	ctx := context.Background()

	must(t, d.Relaunch())
	first := d.PID()
	if err := d.Relaunch(); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("Relaunch while running = %v", err)
	}
	waitLog(t, d.LogPath, 1)
	must(t, d.Kill())
	must(t, d.Relaunch())
	if !d.Running() || d.PID() == first {
		t.Fatalf("after Kill and Relaunch: running %v, pid %d (was %d)",
			d.Running(), d.PID(), first)
	}
	waitLog(t, d.LogPath, 2)
	must(t, d.Stop(ctx))
	log, err := os.ReadFile(d.LogPath)
	must(t, err)
	if !strings.Contains(string(log), "start 2 of asynclspd t") {
		t.Fatalf("log:\n%s", log)
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds asynclspd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p1, err := Build(ctx)
	must(t, err)
	p2, err := Build(ctx)
	must(t, err)
	if p1 != p2 {
		t.Fatalf("built twice: %s, %s", p1, p2)
	}
	must(t, checkExecutable(p1))
	must(t, RemoveBuild())
	if _, err := os.Stat(p1); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after RemoveBuild: %v", err)
	}

	t.Setenv(BinaryEnv, "/nonexistent/asynclspd")
	if _, err := Build(ctx); err == nil {
		t.Fatal("a missing $ASYNCLSP_DAEMON_BIN was accepted")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitLog waits until the stand-in has said n times that its SIGTERM trap
// is set.
func waitLog(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "trapped") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stand-in never set its trap:\n%s", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
