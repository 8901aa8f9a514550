// Package ctl is asyncctl, the command line of asynclspd in the manner of
// lncli: operator commands over the daemon's API (payments, receivers,
// mailbox, stats, sender reannounce, tokens), and commands to try an async
// payment by hand (pay; receiver register, upload and online, which use the
// receiver's own lnd). Output is a table for people, or the API's JSON with
// --json.
//
// Floor: top (asyncctl). Owns the CLI's commands and output; it may import the
// ground floor, the roles' client packages and adminclient, never a role.
package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/jessevdk/go-flags"
	"github.com/lightningnetwork/lnd/clock"
)

// adminTokenFile is the file asynclspd keeps its admin token in, inside
// its data dir (daemon.AdminTokenFile).
const adminTokenFile = "admin.token"

// Options are asyncctl's global options.
type Options struct {
	RPCServer string        `long:"rpcserver" description:"asynclspd's API: host:port, or a URL" default:"127.0.0.1:8270"`
	DataDir   string        `long:"datadir" description:"asynclspd's data dir, where admin.token is read from (default: ~/.asynclsp)"`
	Token     string        `long:"token" description:"API token to use instead of <datadir>/admin.token"`
	TLSCert   string        `long:"tlscert" description:"Certificate of the API's TLS (asynclspd's api.tlscert): use https and trust it"`
	JSON      bool          `long:"json" description:"Print the API's JSON instead of tables"`
	Timeout   time.Duration `long:"timeout" description:"Timeout of each API call" default:"30s"`
}

// app is one run of asyncctl: its options, where it writes, and the
// context its commands run in.
type app struct {
	ctx    context.Context
	opts   Options
	out    io.Writer
	errOut io.Writer
	clock  clock.Clock
}

// Main runs asyncctl with args (without the program name) and returns the
// exit code: 0, or 1 after writing the error to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, out: stdout, errOut: stderr, clock: clock.NewDefaultClock()}
	parser := a.parser()
	_, err := parser.ParseArgs(args)
	var ferr *flags.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ferr) && ferr.Type == flags.ErrHelp:
		fmt.Fprintln(stdout, ferr.Message)
		return 0
	case errors.As(err, &ferr) && ferr.Type == flags.ErrCommandRequired:
		fmt.Fprintf(stderr, "asyncctl: %v\n\n", err)
		parser.WriteHelp(stderr)
		return 1
	}
	fmt.Fprintf(stderr, "asyncctl: %v\n", err)
	return 1
}

// parser builds the command tree.
func (a *app) parser() *flags.Parser {
	p := flags.NewNamedParser("asyncctl", flags.HelpFlag|flags.PassDoubleDash)
	p.LongDescription = "asyncctl talks to asynclspd's API. By default it reads the admin " +
		"token from <datadir>/admin.token, as lncli reads admin.macaroon."
	if _, err := p.AddGroup("Global Options", "", &a.opts); err != nil {
		panic(err)
	}
	add := func(parent interface {
		AddCommand(string, string, string, any) (*flags.Command, error)
	}, name, short, long string, data any) *flags.Command {
		c, err := parent.AddCommand(name, short, long, data)
		if err != nil {
			panic(err)
		}
		return c
	}
	add(p, "getinfo", "Who the daemon is", "Version, node key, network, roles and NATS mode of the daemon.", &getInfoCmd{app: a})

	pay := add(p, "payments", "List, show and cancel payments (sender role)",
		"The sender role's payments. An admin token sees every payment, a wallet token its own.", &struct{}{})
	add(pay, "list", "List payments, newest first", "", &paymentsListCmd{app: a})
	add(pay, "show", "Show one payment", "Usage: payments show <id>", &paymentsShowCmd{app: a})
	add(pay, "cancel", "Cancel a payment that is not paid out",
		"The sender's funds come back at once. Refused while the payment to the receiver may still succeed.",
		&paymentsCancelCmd{app: a})

	add(p, "receivers", "List registered receivers (receiver role)",
		"Each registered receiver with its invoices in custody and pending mailbox items.", &receiversCmd{app: a})
	add(p, "mailbox", "List held payments in receivers' mailboxes (receiver role)", "", &mailboxCmd{app: a})
	add(p, "stats", "Counts across the daemon", "Holds, mailbox items and invoices by state; receivers; tokens.", &statsCmd{app: a})

	snd := add(p, "sender", "Operator actions of the sender role", "", &struct{}{})
	add(snd, "reannounce", "Announce the held payments to a receiver LSP again",
		"For a receiver LSP that lost what it had stored, e.g. its JetStream: every payment "+
			"held for it is announced to it again. Prints how many.", &senderReannounceCmd{app: a})

	tok := add(p, "tokens", "Create, list and revoke API tokens", "", &struct{}{})
	add(tok, "create", "Create a token; its secret is shown once", "", &tokensCreateCmd{app: a})
	add(tok, "list", "List tokens, revoked ones included", "", &tokensListCmd{app: a})
	add(tok, "revoke", "Revoke a token", "Usage: tokens revoke <id>", &tokensRevokeCmd{app: a})

	add(p, "pay", "Pay an offline receiver: print the hold invoice to pay",
		"Asks the sender LSP at --rpcserver for a payment to the receiver at its LSP, "+
			"and prints the hold invoice the sender pays.", &payCmd{app: a})

	rc := &receiverCmd{}
	rc.Lnd = defaultLndOptions()
	recv := add(p, "receiver", "Be a receiver: register, upload invoices, go online and release",
		"Acts for the receiver whose lnd --lnd.* names, against the receiver LSP at --rpcserver. "+
			"The receiver's lnd signs the registration and the releases and makes the invoices.", rc)
	add(recv, "register", "Register the receiver's node key; print its token", "", &receiverRegisterCmd{app: a, rc: rc})
	add(recv, "upload", "Make invoices on the receiver's lnd and hand them to the LSP", "", &receiverUploadCmd{app: a, rc: rc})
	add(recv, "online", "Read the mailbox, release every pending payment and wait for the outcomes", "", &receiverOnlineCmd{app: a, rc: rc})
	return p
}

// baseURL is the API's URL from --rpcserver.
func (a *app) baseURL() string {
	s := a.opts.RPCServer
	if strings.Contains(s, "://") {
		return strings.TrimSuffix(s, "/")
	}
	if a.opts.TLSCert != "" {
		return "https://" + s
	}
	return "http://" + s
}

// httpClient trusts --tlscert when it is set.
func (a *app) httpClient(timeout time.Duration) (*http.Client, error) {
	c := &http.Client{Timeout: timeout}
	if a.opts.TLSCert == "" {
		return c, nil
	}
	pem, err := os.ReadFile(a.opts.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("--tlscert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tlscert: %s holds no PEM certificate", a.opts.TLSCert)
	}
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		MinVersion: tls.VersionTLS12}}
	return c, nil
}

// token is --token, or the daemon's admin token from --datadir.
func (a *app) token() (string, error) {
	if a.opts.Token != "" {
		return a.opts.Token, nil
	}
	dir := a.opts.DataDir
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no --token and no home folder to find the data dir: %w", err)
		}
		dir = filepath.Join(home, ".asynclsp")
	}
	path := filepath.Join(dir, adminTokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no --token, and the admin token cannot be read: %w "+
			"(set --datadir to asynclspd's data dir)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// admin is a client of the admin API.
func (a *app) admin() (*adminclient.Client, error) {
	tok, err := a.token()
	if err != nil {
		return nil, err
	}
	hc, err := a.httpClient(a.opts.Timeout)
	if err != nil {
		return nil, err
	}
	return adminclient.New(adminclient.Config{URL: a.baseURL(), Token: tok, HTTPClient: hc})
}

// sender is a client of the sender role's payments API.
func (a *app) sender() (*senderclient.Client, error) {
	tok, err := a.token()
	if err != nil {
		return nil, err
	}
	// No client-wide timeout: the senderlsp client bounds each call itself.
	hc, err := a.httpClient(0)
	if err != nil {
		return nil, err
	}
	return senderclient.New(senderclient.Config{URL: a.baseURL(), Token: tok,
		HTTPClient: hc, Timeout: a.opts.Timeout})
}

// noArgs refuses positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}

// oneArg takes exactly one positional argument, called name.
func oneArg(args []string, name string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("want exactly one argument, the %s; got %d", name, len(args))
	}
	return args[0], nil
}
