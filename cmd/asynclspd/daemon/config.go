// Package daemon is asynclspd: one process running the sender role, the
// receiver role, or both, next to one lnd, with NATS embedded or external,
// its state in one SQLite file, an HTTP API for wallet backends and an ops
// listener for health, readiness and metrics.
//
// Floor: top (asynclspd), the composition root. Owns configuration, Run, the
// listeners, the admin API and shutdown; it may import every floor below.
package daemon

import (
	"errors"
	"fmt"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/receiverlsp"
	"github.com/asynclsp/asynclsp/senderlsp"
	"github.com/jessevdk/go-flags"
)

// Roles an asynclspd can run.
const (
	RoleSender   = "sender"
	RoleReceiver = "receiver"
)

// Config is asynclspd's whole configuration: an ini file (configfile, by
// default in the data dir) and flags, flags winning.
type Config struct {
	ShowVersion bool     `short:"V" long:"version" description:"Print the version and exit"`
	ConfigFile  string   `long:"configfile" description:"Path of the ini configuration file (default: <datadir>/asynclspd.conf)"`
	DataDir     string   `long:"datadir" description:"Directory of the database, the embedded NATS store and the admin token"`
	Network     string   `long:"network" description:"Bitcoin network of the lnd node" choice:"mainnet" choice:"testnet" choice:"testnet4" choice:"signet" choice:"regtest" choice:"simnet"`
	Roles       []string `long:"role" description:"Role to run; repeat for both (default: both)" choice:"sender" choice:"receiver"`
	LogLevel    string   `long:"loglevel" description:"Log level" choice:"debug" choice:"info" choice:"warn" choice:"error"`
	LogFormat   string   `long:"logformat" description:"Log format" choice:"text" choice:"json"`

	// ShutdownTimeout bounds a graceful stop on SIGTERM.
	ShutdownTimeout time.Duration `long:"shutdowntimeout" description:"How long a graceful shutdown may take before in-flight work is abandoned"`

	Lnd      LndConfig           `group:"lnd" namespace:"lnd"`
	API      APIConfig           `group:"api" namespace:"api"`
	Ops      OpsConfig           `group:"ops" namespace:"ops"`
	NATS     NATSConfig          `group:"nats" namespace:"nats"`
	Sender   senderlsp.Config    `group:"sender" namespace:"sender"`
	Receiver receiverlsp.Options `group:"receiver" namespace:"receiver"`
	LSPS0    lsps0.Limits        `group:"lsps0" namespace:"lsps0"`
}

// LndConfig says how to reach the lnd this daemon runs next to.
type LndConfig struct {
	Host         string `long:"host" description:"lnd's gRPC address"`
	TLSCertPath  string `long:"tlscertpath" description:"lnd's TLS certificate"`
	MacaroonPath string `long:"macaroonpath" description:"lnd's admin macaroon (default: ~/.lnd/data/chain/bitcoin/<network>/admin.macaroon)"`
}

// APIConfig is the HTTP API for wallet backends and the operator.
type APIConfig struct {
	Listen  string `long:"listen" description:"Address of the HTTP API (loopback unless TLS is set)"`
	TLSCert string `long:"tlscert" description:"TLS certificate of the API (required for a non-loopback listen address)"`
	TLSKey  string `long:"tlskey" description:"TLS key of the API"`
	// NoConsole leaves the web console out: /console/ is then not found.
	NoConsole bool `long:"noconsole" description:"Do not serve the operator's web console under /console/"`
}

// OpsConfig is the listener for /healthz, /readyz and /metrics.
type OpsConfig struct {
	Listen string `long:"listen" description:"Address of /healthz, /readyz and /metrics; empty to disable"`

	// PProf adds Go's profiler (net/http/pprof) under /debug/pprof/: for
	// measuring, e.g. the heap after a forced GC (heap?gc=1). A profile
	// shows the code and what it allocates, and a CPU profile or trace
	// costs CPU while it runs: expose it to the operator only.
	PProf bool `long:"pprof" description:"Also serve Go's profiler under /debug/pprof/ on the ops listener (for the operator only)"`
}

// NATSConfig chooses the embedded server or an external one.
type NATSConfig struct {
	URLs           []string `long:"url" description:"NATS server URL (repeat for a cluster); none: run an embedded server"`
	EmbeddedListen string   `long:"embeddedlisten" description:"Loopback address of the embedded NATS server"`
	NKeySeedFile   string   `long:"nkeyseedfile" description:"NATS NKey seed file of this LSP"`
	CredsFile      string   `long:"credsfile" description:"NATS credentials file of this LSP"`
	CAFile         string   `long:"cafile" description:"CA that signs the NATS servers' certificates"`
	CertFile       string   `long:"certfile" description:"Client certificate for NATS (mutual TLS)"`
	KeyFile        string   `long:"keyfile" description:"Client key for NATS (mutual TLS)"`
	AllowPlainText bool     `long:"allowplaintext" description:"Allow a NATS connection without TLS to a non-loopback server"`
	CreateStream   bool     `long:"createstream" description:"Create this LSP's inbound stream (the embedded server always does; on a shared server the operator may provision it)"`
	StreamReplicas int      `long:"streamreplicas" description:"Replicas of the inbound stream this daemon creates: 1 on one server, 3 on a JetStream cluster"`

	// AckWait is how long a message handed to this daemon waits for its
	// handler's verdict before NATS delivers it again (after a crash, the
	// wait before a message in flight comes back).
	AckWait time.Duration `long:"ackwait" description:"How long an inbound message in flight waits for its handler before NATS redelivers it"`

	// BlockPeers are node keys of LSPs cut off: their messages are
	// dropped unhandled and counted, their requests rejected.
	BlockPeers []string `long:"blockpeer" description:"Node key (hex) of an LSP whose messages are dropped unhandled and requests rejected (repeat for several)"`

	// PeerRate and PeerBurst bound how fast one peer LSP's messages are
	// taken on: the excess is handed back to NATS with a delay.
	PeerRate  float64 `long:"peerrate" description:"Messages per second one peer LSP's inbound messages are taken on at, sustained; the excess is redelivered later"`
	PeerBurst int     `long:"peerburst" description:"How many of one peer LSP's inbound messages are taken on at once above nats.peerrate"`
}

// blockedPeers parses BlockPeers.
func (n NATSConfig) blockedPeers() ([]bus.NodeKey, error) {
	keys := make([]bus.NodeKey, 0, len(n.BlockPeers))
	for _, s := range n.BlockPeers {
		k, err := bus.ParseNodeKey(s)
		if err != nil {
			return nil, fmt.Errorf("nats.blockpeer: %q: %w", s, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// DefaultConfig is what one machine wants.
func DefaultConfig() Config {
	home, _ := os.UserHomeDir()
	dataDir := filepath.Join(home, ".asynclsp")
	lndDir := filepath.Join(home, ".lnd")
	return Config{
		DataDir:         dataDir,
		Network:         "mainnet",
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 30 * time.Second,
		Lnd: LndConfig{
			Host:        "localhost:10009",
			TLSCertPath: filepath.Join(lndDir, "tls.cert"),
			// Empty: lnd's admin.macaroon of the configured network.
			MacaroonPath: "",
		},
		API: APIConfig{Listen: "127.0.0.1:8270"},
		Ops: OpsConfig{Listen: "127.0.0.1:8271"},
		NATS: NATSConfig{EmbeddedListen: "127.0.0.1:4222", StreamReplicas: 1,
			AckWait: 10 * time.Second, PeerRate: 200, PeerBurst: 500},
		Sender:   senderlsp.DefaultConfig(),
		Receiver: receiverlsp.DefaultOptions(),
		LSPS0: lsps0.Limits{PeerRate: lsps0.DefaultPeerRate,
			PeerBurst: lsps0.DefaultPeerBurst, PeerQueue: lsps0.DefaultPeerQueue,
			MaxPeers: lsps0.DefaultMaxPeers, MaxHandlers: lsps0.DefaultMaxHandlers,
			HandlerTimeout: lsps0.DefaultHandlerTimeout, PeerIdle: lsps0.DefaultPeerIdle},
	}
}

// ErrHelp: --help was given; the error is a *HelpError with the text.
// Exit without error.
var ErrHelp = errors.New("help requested")

// HelpError carries the help text --help asked for. It matches ErrHelp.
type HelpError struct{ Text string }

func (e *HelpError) Error() string { return ErrHelp.Error() }

// Is makes errors.Is(err, ErrHelp) true.
func (e *HelpError) Is(target error) bool { return target == ErrHelp }

// LoadConfig reads the ini file, then the flags, then validates. The ini
// file has lnd's layout: top-level options in [Application Options], each
// group in its own section with namespaced names ([lnd] lnd.host=...).
// --help returns a *HelpError.
func LoadConfig(args []string) (*Config, error) {
	cfg := DefaultConfig()
	// A first pass over the flags only to find the data dir and the
	// config file.
	pre := cfg
	if _, err := flags.NewParser(&pre, flags.IgnoreUnknown).ParseArgs(args); err != nil {
		return nil, err
	}
	if pre.ShowVersion {
		return &pre, nil
	}
	file := pre.ConfigFile
	if file == "" {
		file = filepath.Join(pre.DataDir, "asynclspd.conf")
	}
	parser := flags.NewParser(&cfg, flags.HelpFlag|flags.PassDoubleDash)
	parser.Name = "asynclspd"
	if _, err := os.Stat(file); err == nil {
		if err := flags.NewIniParser(parser).ParseFile(file); err != nil {
			var ierr *flags.IniError // names the file and the line
			if errors.As(err, &ierr) {
				return nil, fmt.Errorf("configfile: %w", err)
			}
			return nil, fmt.Errorf("configfile %s: %w", file, err)
		}
	} else if pre.ConfigFile != "" {
		return nil, fmt.Errorf("configfile: %w", err)
	}
	rest, err := parser.ParseArgs(args)
	var ferr *flags.Error
	if errors.As(err, &ferr) && ferr.Type == flags.ErrHelp {
		return nil, &HelpError{Text: ferr.Message}
	}
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every setting is an --option", rest)
	}
	if cfg.Lnd.MacaroonPath == "" {
		home, _ := os.UserHomeDir()
		cfg.Lnd.MacaroonPath = filepath.Join(home, ".lnd", "data", "chain",
			"bitcoin", cfg.Network, "admin.macaroon")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate checks the configuration; each error names its option.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.DataDir == "" {
		bad("datadir: must be set")
	}
	if len(c.Roles) == 0 {
		c.Roles = []string{RoleSender, RoleReceiver}
	}
	slices.Sort(c.Roles)
	c.Roles = slices.Compact(c.Roles)
	if c.Lnd.Host == "" {
		bad("lnd.host: must be set")
	}
	for _, p := range []struct{ name, path string }{
		{"lnd.tlscertpath", c.Lnd.TLSCertPath},
		{"lnd.macaroonpath", c.Lnd.MacaroonPath},
	} {
		if _, err := os.Stat(p.path); err != nil {
			bad("%s: %v", p.name, err)
		}
	}
	if err := checkListen("api.listen", c.API.Listen, c.API.TLSCert != ""); err != nil {
		errs = append(errs, err)
	}
	if (c.API.TLSCert == "") != (c.API.TLSKey == "") {
		bad("api.tlscert and api.tlskey: set both or neither")
	}
	files := []struct{ name, path string }{
		{"api.tlscert", c.API.TLSCert}, {"api.tlskey", c.API.TLSKey},
		{"nats.nkeyseedfile", c.NATS.NKeySeedFile}, {"nats.credsfile", c.NATS.CredsFile},
		{"nats.cafile", c.NATS.CAFile}, {"nats.certfile", c.NATS.CertFile},
		{"nats.keyfile", c.NATS.KeyFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad("%s: %v", f.name, err)
		}
	}
	if c.Ops.Listen != "" {
		if err := checkListen("ops.listen", c.Ops.Listen, true); err != nil {
			errs = append(errs, err)
		}
	} else if c.Ops.PProf {
		bad("ops.pprof: needs ops.listen, where it is served")
	}
	if len(c.NATS.URLs) == 0 {
		host, _, err := net.SplitHostPort(c.NATS.EmbeddedListen)
		if err != nil || !isLoopback(host) {
			bad("nats.embeddedlisten: %q must be a loopback host:port", c.NATS.EmbeddedListen)
		}
		if c.NATS.StreamReplicas != 1 {
			bad("nats.streamreplicas: the embedded server keeps one replica; " +
				"replicas need a JetStream cluster (nats.url)")
		}
	}
	for _, raw := range c.NATS.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
			bad("nats.url: %q must be nats://host:port or tls://host:port", raw)
		}
	}
	if c.NATS.NKeySeedFile != "" && c.NATS.CredsFile != "" {
		bad("nats.nkeyseedfile and nats.credsfile: set at most one")
	}
	if (c.NATS.CertFile == "") != (c.NATS.KeyFile == "") {
		bad("nats.certfile and nats.keyfile: set both or neither")
	}
	if c.NATS.AckWait < time.Second {
		bad("nats.ackwait: %v must be at least 1s", c.NATS.AckWait)
	}
	if _, err := c.NATS.blockedPeers(); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.PeerRate <= 0 {
		bad("nats.peerrate: %v must be positive", c.NATS.PeerRate)
	}
	if c.NATS.PeerBurst < 1 {
		bad("nats.peerburst: %d must be at least 1", c.NATS.PeerBurst)
	}
	if c.NATS.StreamReplicas < 1 || c.NATS.StreamReplicas > 5 {
		bad("nats.streamreplicas: %d must be from 1 to 5", c.NATS.StreamReplicas)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdowntimeout: must be positive")
	}
	if c.Has(RoleSender) {
		errs = append(errs, namespaced("sender.", c.Sender.Validate())...)
	}
	if c.Has(RoleReceiver) {
		errs = append(errs, namespaced("receiver.", c.Receiver.Validate())...)
	}
	return errors.Join(errs...)
}

// namespaced prefixes each of a role's validation errors, which start with
// the option's own name, with the role's namespace: the flag's full name.
func namespaced(ns string, err error) []error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		list = joined.Unwrap()
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%s%w", ns, e)
	}
	return out
}

// Has reports whether the daemon runs role.
func (c *Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// checkListen requires a host:port, on loopback unless TLS protects it.
func checkListen(name, addr string, tls bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port", name, addr)
	}
	if !tls && !isLoopback(host) {
		return fmt.Errorf("%s: %q is not a loopback address; set api.tlscert "+
			"and api.tlskey to listen beyond this machine", name, addr)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
