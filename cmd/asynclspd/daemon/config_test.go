package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/receiverlsp"
	"github.com/asynclsp/asynclsp/senderlsp"
)

// fakeHome makes a home folder with lnd's default tls.cert and regtest and
// mainnet admin.macaroon, so that the defaults validate, and returns it.
func fakeHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, f := range []string{
		".lnd/tls.cert",
		".lnd/data/chain/bitcoin/mainnet/admin.macaroon",
		".lnd/data/chain/bitcoin/regtest/admin.macaroon",
	} {
		writeFile(t, filepath.Join(home, f), "x")
	}
	return home
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// With no file and no flags, the defaults are what one machine wants.
func TestLoadConfigDefaults(t *testing.T) {
	home := fakeHome(t)
	cfg, err := LoadConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	switch {
	case cfg.DataDir != filepath.Join(home, ".asynclsp"):
		t.Errorf("datadir %q", cfg.DataDir)
	case !slices.Equal(cfg.Roles, []string{RoleReceiver, RoleSender}):
		t.Errorf("roles %v, want both", cfg.Roles)
	case cfg.Network != "mainnet" || cfg.LogLevel != "info" || cfg.LogFormat != "text":
		t.Errorf("network %q, log %q %q", cfg.Network, cfg.LogLevel, cfg.LogFormat)
	case cfg.ShutdownTimeout != 30*time.Second:
		t.Errorf("shutdowntimeout %v", cfg.ShutdownTimeout)
	case cfg.Lnd.Host != "localhost:10009" ||
		cfg.Lnd.TLSCertPath != filepath.Join(home, ".lnd", "tls.cert") ||
		cfg.Lnd.MacaroonPath != filepath.Join(home, ".lnd/data/chain/bitcoin/mainnet/admin.macaroon"):
		t.Errorf("lnd %+v", cfg.Lnd)
	case cfg.API != (APIConfig{Listen: "127.0.0.1:8270"}) || cfg.Ops != (OpsConfig{Listen: "127.0.0.1:8271"}):
		t.Errorf("api %+v, ops %+v", cfg.API, cfg.Ops)
	case len(cfg.NATS.URLs) != 0 || cfg.NATS.EmbeddedListen != "127.0.0.1:4222" ||
		cfg.NATS.StreamReplicas != 1 || cfg.NATS.CreateStream:
		t.Errorf("nats %+v", cfg.NATS)
	case cfg.Receiver != receiverlsp.DefaultOptions():
		t.Errorf("receiver options %+v", cfg.Receiver)
	case cfg.Sender.HoldCltvDelta != want.Sender.HoldCltvDelta ||
		!slices.Equal(cfg.Sender.QuickRetries, senderlsp.DefaultConfig().QuickRetries):
		t.Errorf("sender options %+v", cfg.Sender)
	}

	// The default macaroon is the configured network's.
	cfg, err = LoadConfig([]string{"--network=regtest"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".lnd/data/chain/bitcoin/regtest/admin.macaroon"); cfg.Lnd.MacaroonPath != want {
		t.Errorf("regtest macaroon %q, want %q", cfg.Lnd.MacaroonPath, want)
	}
}

// The ini file sets what flags do not; flags win, lists included; the file
// in the data dir is read without --configfile.
func TestLoadConfigPrecedence(t *testing.T) {
	fakeHome(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "asynclspd.conf"), `
[Application Options]
role=sender
loglevel=debug
shutdowntimeout=5s

[lnd]
lnd.host=127.0.0.1:10010

[api]
api.listen=127.0.0.1:9000

[nats]
nats.url=nats://127.0.0.1:4223
nats.url=nats://127.0.0.1:4224
nats.streamreplicas=3
nats.ackwait=45s
nats.blockpeer=02aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
nats.blockpeer=03bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
nats.peerrate=50

[sender]
sender.fee-ppm=5
sender.capacity-overcommit=1.5
sender.quick-retry=2s
sender.quick-retry=4s
`)
	cfg, err := LoadConfig([]string{"--datadir=" + dir, "--api.listen=127.0.0.1:9001",
		"--nats.url=nats://127.0.0.1:4225", "--sender.quick-retry=3s"})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !slices.Equal(cfg.Roles, []string{RoleSender}):
		t.Errorf("roles %v: from the file", cfg.Roles)
	case cfg.LogLevel != "debug" || cfg.ShutdownTimeout != 5*time.Second:
		t.Errorf("loglevel %q, shutdowntimeout %v: from the file", cfg.LogLevel, cfg.ShutdownTimeout)
	case cfg.Lnd.Host != "127.0.0.1:10010":
		t.Errorf("lnd.host %q: from the file", cfg.Lnd.Host)
	case cfg.API.Listen != "127.0.0.1:9001":
		t.Errorf("api.listen %q: the flag wins", cfg.API.Listen)
	case !slices.Equal(cfg.NATS.URLs, []string{"nats://127.0.0.1:4225"}):
		t.Errorf("nats.url %v: the flag replaces the file's list", cfg.NATS.URLs)
	case cfg.NATS.StreamReplicas != 3 || cfg.Sender.FeePPM != 5 || cfg.NATS.AckWait != 45*time.Second:
		t.Errorf("streamreplicas %d, fee-ppm %d, ackwait %v: from the file",
			cfg.NATS.StreamReplicas, cfg.Sender.FeePPM, cfg.NATS.AckWait)
	case !slices.Equal(cfg.Sender.QuickRetries, []time.Duration{3 * time.Second}):
		t.Errorf("quick-retry %v: the flag replaces the file's list", cfg.Sender.QuickRetries)
	case cfg.Sender.CapacityOvercommit != 1.5 || cfg.Sender.CapacityRefresh != 2*time.Second:
		t.Errorf("capacity-overcommit %v from the file, capacity-refresh %v by default",
			cfg.Sender.CapacityOvercommit, cfg.Sender.CapacityRefresh)
	case cfg.NATS.PeerRate != 50 || cfg.NATS.PeerBurst != 500:
		t.Errorf("peerrate %v from the file, peerburst %d by default", cfg.NATS.PeerRate, cfg.NATS.PeerBurst)
	}
	blocked, err := cfg.NATS.blockedPeers()
	if err != nil || len(blocked) != 2 || blocked[0][0] != 0x02 || blocked[1][1] != 0xbb {
		t.Errorf("blockpeer: %v, %v: both keys from the file", blocked, err)
	}

	// --configfile names another file; the data dir's is then not read.
	other := filepath.Join(t.TempDir(), "other.conf")
	writeFile(t, other, "[Application Options]\nloglevel=warn\n")
	cfg, err = LoadConfig([]string{"--datadir=" + dir, "--configfile=" + other})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "warn" || !slices.Equal(cfg.Roles, []string{RoleReceiver, RoleSender}) {
		t.Errorf("with --configfile: loglevel %q, roles %v", cfg.LogLevel, cfg.Roles)
	}
}

// ops.pprof is off by default, and set by the file or the flag.
func TestLoadConfigOpsPProf(t *testing.T) {
	fakeHome(t)
	for _, tc := range []struct {
		name string
		args []string
		ini  string
		want bool
	}{
		{"default", nil, "", false},
		{"flag", []string{"--ops.pprof"}, "", true},
		{"file", nil, "[ops]\nops.pprof=true\n", true},
		{"file off", nil, "[ops]\nops.pprof=false\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.ini != "" {
				writeFile(t, filepath.Join(dir, "asynclspd.conf"), tc.ini)
			}
			cfg, err := LoadConfig(append([]string{"--datadir=" + dir}, tc.args...))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Ops.PProf != tc.want || cfg.Ops.Listen != "127.0.0.1:8271" {
				t.Errorf("ops %+v, want pprof %v", cfg.Ops, tc.want)
			}
		})
	}
}

// Each bad setting fails with a message that names the option.
func TestLoadConfigErrors(t *testing.T) {
	home := fakeHome(t)
	seed := filepath.Join(home, "lsp.nk")
	writeFile(t, seed, "SU...")
	for _, tc := range []struct {
		name string
		args []string
		ini  string
		want []string
	}{
		{"unknown flag", []string{"--lnd.hots=x"}, "", []string{"lnd.hots"}},
		{"positional argument", []string{"start"}, "", []string{"unexpected arguments"}},
		{"network", []string{"--network=mainnett"}, "", []string{"--network", "mainnett"}},
		{"role", []string{"--role=both"}, "", []string{"--role"}},
		{"loglevel", []string{"--loglevel=loud"}, "", []string{"--loglevel"}},
		{"duration syntax", []string{"--shutdowntimeout=soon"}, "", []string{"shutdowntimeout"}},
		{"shutdowntimeout", []string{"--shutdowntimeout=0s"}, "", []string{"shutdowntimeout: must be positive"}},
		{"datadir", []string{"--datadir="}, "", []string{"datadir: must be set"}},
		{"configfile", []string{"--configfile=/nonexistent/asynclspd.conf"}, "", []string{"configfile"}},
		{"lnd.host", []string{"--lnd.host="}, "", []string{"lnd.host: must be set"}},
		{"lnd.tlscertpath", []string{"--lnd.tlscertpath=/nonexistent/tls.cert"}, "", []string{"lnd.tlscertpath"}},
		{"lnd.macaroonpath", []string{"--lnd.macaroonpath=/nonexistent/admin.macaroon"}, "", []string{"lnd.macaroonpath"}},
		{"macaroon of the network", []string{"--network=signet"}, "", []string{"lnd.macaroonpath", "signet"}},
		{"api.listen public", []string{"--api.listen=0.0.0.0:8270"}, "", []string{"api.listen", "not a loopback"}},
		{"api.listen syntax", []string{"--api.listen=8270"}, "", []string{"api.listen", "host:port"}},
		{"api.tlscert alone", []string{"--api.tlscert=" + seed}, "", []string{"api.tlscert and api.tlskey"}},
		{"api.tlskey missing", []string{"--api.tlscert=" + seed, "--api.tlskey=/nonexistent/key"}, "", []string{"api.tlskey"}},
		{"ops.listen", []string{"--ops.listen=localhost"}, "", []string{"ops.listen"}},
		{"ops.pprof without ops.listen", []string{"--ops.listen=", "--ops.pprof"}, "", []string{"ops.pprof: needs ops.listen"}},
		{"nats.embeddedlisten", []string{"--nats.embeddedlisten=0.0.0.0:4222"}, "", []string{"nats.embeddedlisten"}},
		{"nats.url", []string{"--nats.url=http://127.0.0.1:4222"}, "", []string{"nats.url"}},
		{"nats.nkeyseedfile", []string{"--nats.nkeyseedfile=/nonexistent/seed"}, "", []string{"nats.nkeyseedfile"}},
		{"nats seed and creds", []string{"--nats.nkeyseedfile=" + seed, "--nats.credsfile=" + seed}, "", []string{"nats.nkeyseedfile and nats.credsfile"}},
		{"nats.certfile alone", []string{"--nats.certfile=" + seed}, "", []string{"nats.certfile and nats.keyfile"}},
		{"nats.streamreplicas embedded", []string{"--nats.streamreplicas=3"}, "", []string{"nats.streamreplicas", "embedded"}},
		{"nats.streamreplicas range", []string{"--nats.url=nats://127.0.0.1:4222", "--nats.streamreplicas=7"}, "", []string{"nats.streamreplicas"}},
		{"nats.ackwait too short", []string{"--nats.ackwait=100ms"}, "", []string{"nats.ackwait"}},
		{"nats.blockpeer not a key", []string{"--nats.blockpeer=02abcd"}, "", []string{"nats.blockpeer", "02abcd"}},
		{"nats.peerrate", []string{"--nats.peerrate=0"}, "", []string{"nats.peerrate"}},
		{"nats.peerburst", []string{"--nats.peerburst=0"}, "", []string{"nats.peerburst"}},
		{"sender.hold-cltv-delta", []string{"--sender.hold-cltv-delta=3000"}, "", []string{"sender.hold-cltv-delta"}},
		{"sender.max-parts", []string{"--sender.max-parts=0"}, "", []string{"sender.max-parts"}},
		{"sender.safety-margin-blocks", []string{"--sender.safety-margin-blocks=10"}, "", []string{"sender.safety-margin-blocks"}},
		{"sender.capacity-overcommit zero", []string{"--sender.capacity-overcommit=0"}, "", []string{"sender.capacity-overcommit"}},
		{"sender.capacity-overcommit NaN", []string{"--sender.capacity-overcommit=NaN"}, "", []string{"sender.capacity-overcommit"}},
		{"sender.capacity-overcommit huge", []string{"--sender.capacity-overcommit=1000"}, "", []string{"sender.capacity-overcommit"}},
		{"sender.capacity-refresh", []string{"--sender.capacity-refresh=5m"}, "", []string{"sender.capacity-refresh"}},
		{"receiver.maxstock", []string{"--receiver.maxstock=0"}, "", []string{"receiver.maxstock"}},
		{"receiver.mininvoicelife", []string{"--receiver.mininvoicelife=0s"}, "", []string{"receiver.mininvoicelife"}},
		{"receiver.webhook.maxattempts", []string{"--receiver.webhook.maxattempts=0"}, "", []string{"receiver.webhook.maxattempts"}},
		{"two at once", []string{"--lnd.host=", "--shutdowntimeout=-1s"}, "", []string{"lnd.host", "shutdowntimeout"}},
		{"ini unknown option", nil, "[lnd]\nlnd.hots=x\n", []string{"configfile", "asynclspd.conf:2", "lnd.hots"}},
		{"ini bad value", nil, "[Application Options]\nnetwork=moon\n", []string{"configfile", "network", "moon"}},
		{"ini unknown section", nil, "[lightning]\nlnd.host=x\n", []string{"configfile", "lightning"}},
		{"ini bad role option", nil, "[sender]\nsender.max-parts=99\n", []string{"sender.max-parts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.ini != "" {
				writeFile(t, filepath.Join(dir, "asynclspd.conf"), tc.ini)
			}
			args := append([]string{"--datadir=" + dir}, tc.args...)
			if tc.name == "datadir" {
				args = tc.args
			}
			_, err := LoadConfig(args)
			if err == nil {
				t.Fatalf("LoadConfig(%q) passed", args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}

	// A role's options are checked only when the daemon runs the role.
	if _, err := LoadConfig([]string{"--datadir=" + t.TempDir(), "--role=sender",
		"--receiver.maxstock=0"}); err != nil {
		t.Errorf("a receiver option with only the sender role: %v", err)
	}
}

func TestLoadConfigHelp(t *testing.T) {
	fakeHome(t)
	_, err := LoadConfig([]string{"--help"})
	var help *HelpError
	if !errors.Is(err, ErrHelp) || !errors.As(err, &help) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"asynclspd", "--lnd.host", "--nats.url", "--sender.fee-ppm", "--receiver.maxstock"} {
		if !strings.Contains(help.Text, want) {
			t.Errorf("help does not mention %s", want)
		}
	}
	cfg, err := LoadConfig([]string{"--version", "--lnd.host="})
	if err != nil || !cfg.ShowVersion {
		t.Fatalf("--version: %+v, %v", cfg, err)
	}
}
