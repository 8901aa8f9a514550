package lsp

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// Roles, as asynclspd's --role takes them.
const (
	RoleSender   = "sender"
	RoleReceiver = "receiver"
)

// ErrInvalidOptions is returned by Start for options it cannot use.
var ErrInvalidOptions = errors.New("invalid asynclspd options")

// Options describe one asynclspd next to one lnd node of the network.
type Options struct {
	// Name labels the daemon in errors and its folder, e.g. "bob".
	// Default: the node's name.
	Name string

	// Node is the lnd the daemon runs next to (required).
	Node *regtest.Node

	// Dir is the data dir: database, embedded NATS store, admin token,
	// configuration file and log. Default: asynclspd-<name> beside the
	// node's folder, inside the network's folder, so the network keeps
	// it with its own logs when a test fails.
	Dir string

	// Roles are the roles to run (RoleSender, RoleReceiver); default
	// both.
	Roles []string

	// NATSURL is the NATS server to use, e.g. another daemon's
	// embedded one (Daemon.NATSURL). Empty: run an embedded server on a
	// free loopback port.
	NATSURL string

	// CreateStream creates this LSP's inbound stream on NATSURL's
	// server (the embedded server always does).
	CreateStream bool

	// Settings are further lines of the configuration file, in go-flags
	// ini form with the option's long name: "sender.hold-cltv-delta=400",
	// "receiver.webhook.cooldown=1s". A repeatable option may appear
	// more than once.
	Settings []string

	// LogLevel is asynclspd's log level; default debug.
	LogLevel string

	// Binary is the asynclspd to run; default what Build makes.
	Binary string
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.Name == "" && o.Node != nil {
		o.Name = o.Node.Name
	}
	if o.Dir == "" && o.Node != nil {
		o.Dir = filepath.Join(filepath.Dir(o.Node.Dir),
			"asynclspd-"+o.Name)
	}
	if len(o.Roles) == 0 {
		o.Roles = []string{RoleSender, RoleReceiver}
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}

	return o
}

// validate checks options after withDefaults.
func (o Options) validate() error {
	if o.Node == nil {
		return fmt.Errorf("%w: no lnd node", ErrInvalidOptions)
	}
	for _, r := range o.Roles {
		if r != RoleSender && r != RoleReceiver {
			return fmt.Errorf("%w: role %q", ErrInvalidOptions, r)
		}
	}
	for _, s := range o.Settings {
		key, _, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(key) == "" || strings.ContainsAny(s, "\n\r") {
			return fmt.Errorf("%w: setting %q is not one key=value "+
				"line", ErrInvalidOptions, s)
		}
	}

	return nil
}

// ports are the daemon's listeners; they stay the same across restarts.
type ports struct {
	api, ops, nats int
}

// configFile renders the ini file of a daemon for o (after withDefaults).
// natsPort is the embedded server's port, 0 with an external server.
func configFile(o Options, p ports) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format+"\n", args...)
	}
	line("; asynclspd for %s, written by scenarios/lsp", o.Name)
	line("[Application Options]")
	line("datadir=%s", o.Dir)
	line("network=regtest")
	for _, r := range o.Roles {
		line("role=%s", r)
	}
	line("loglevel=%s", o.LogLevel)
	line("")
	line("lnd.host=%s", o.Node.RPCAddr())
	line("lnd.tlscertpath=%s", o.Node.TLSCertPath)
	line("lnd.macaroonpath=%s", o.Node.MacaroonPath)
	line("")
	line("api.listen=127.0.0.1:%d", p.api)
	line("ops.listen=127.0.0.1:%d", p.ops)
	line("")
	if o.NATSURL == "" {
		line("nats.embeddedlisten=127.0.0.1:%d", p.nats)
	} else {
		line("nats.url=%s", o.NATSURL)
	}
	if o.CreateStream {
		line("nats.createstream=true")
	}
	if len(o.Settings) > 0 {
		line("")
		for _, s := range o.Settings {
			line("%s", s)
		}
	}

	return b.String()
}
