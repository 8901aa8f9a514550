package lsp

import (
	"context"
	"errors"
	"fmt"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// Timeouts of the daemon's life cycle.
const (
	// ReadyTimeout bounds the wait for /readyz when the caller's context
	// has no earlier deadline.
	ReadyTimeout = 90 * time.Second

	// stopTimeout is how long a daemon gets to exit after SIGTERM
	// (asynclspd's own shutdowntimeout is 30 s) before it is killed.
	stopTimeout = 40 * time.Second

	pollInterval = 25 * time.Millisecond
)

// adminTokenFile is where asynclspd keeps the operator's token in its data
// dir (daemon.AdminTokenFile).
const adminTokenFile = "admin.token"

// Daemon is one asynclspd process and what it listens on.
type Daemon struct {
	// Name labels the daemon ("bob").
	Name string

	// Dir is the data dir; ConfigPath and LogPath are in it.
	Dir        string
	ConfigPath string
	LogPath    string

	// APIURL is the HTTP API (both roles' endpoints), OpsURL the
	// /healthz, /readyz and /metrics listener.
	APIURL string
	OpsURL string

	// NATSURL is the NATS server the daemon uses: its embedded one, which
	// another daemon can be pointed at, or Options.NATSURL.
	NATSURL string

	// NodeKey is the key of the daemon's lnd: the LSP's identity.
	NodeKey onionmsg.NodeKey

	opts Options
	proc *proc.Process
	http *http.Client

	mu      sync.Mutex
	starts  int
	stopped bool // the last exit was asked for (Stop or Kill)
}

// Start writes the daemon's configuration file, starts it and returns once
// it is ready (/readyz answers 200). On failure the process is stopped and
// the error ends with the tail of its log.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Binary == "" {
		bin, err := Build(ctx)
		if err != nil {
			return nil, err
		}
		opts.Binary = bin
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	key, err := onionmsg.NewNodeKey(opts.Node.PubKey[:])
	if err != nil {
		return nil, fmt.Errorf("asynclspd %s: lnd node key: %w", opts.Name,
			err)
	}

	var p ports
	for _, port := range []*int{&p.api, &p.ops} {
		if *port, err = proc.FreePort(); err != nil {
			return nil, err
		}
	}
	natsURL := opts.NATSURL
	if natsURL == "" {
		if p.nats, err = proc.FreePort(); err != nil {
			return nil, err
		}
		natsURL = fmt.Sprintf("nats://127.0.0.1:%d", p.nats)
	}

	d := &Daemon{
		Name:       opts.Name,
		Dir:        opts.Dir,
		ConfigPath: filepath.Join(opts.Dir, "asynclspd.conf"),
		LogPath:    filepath.Join(opts.Dir, "asynclspd.log"),
		APIURL:     fmt.Sprintf("http://127.0.0.1:%d", p.api),
		OpsURL:     fmt.Sprintf("http://127.0.0.1:%d", p.ops),
		NATSURL:    natsURL,
		NodeKey:    key,
		opts:       opts,
		http:       &http.Client{Timeout: 5 * time.Second},
	}
	if err := os.WriteFile(d.ConfigPath, []byte(configFile(opts, p)),
		0o600); err != nil {
		return nil, err
	}
	d.proc = &proc.Process{
		Path:    opts.Binary,
		Args:    []string{"--configfile=" + d.ConfigPath},
		LogPath: d.LogPath,
	}
	if err := d.start(ctx); err != nil {
		return nil, err
	}

	return d, nil
}

// start starts the process and waits until it is ready; on failure it
// kills it.
func (d *Daemon) start(ctx context.Context) error {
	if err := d.launch(); err != nil {
		return err
	}
	if err := d.WaitReady(ctx); err != nil {
		_ = d.Kill()

		return err
	}

	return nil
}

// launch starts the process, its output headed by the start's number.
func (d *Daemon) launch() error {
	d.mu.Lock()
	d.starts++
	n := d.starts
	d.stopped = false
	d.mu.Unlock()

	header := fmt.Sprintf("=== scenarios/lsp: start %d of asynclspd %s at %s",
		n, d.Name, time.Now().Format(time.RFC3339Nano))
	if err := d.proc.Start(header); err != nil {
		return fmt.Errorf("asynclspd %s: %w", d.Name, err)
	}

	return nil
}

// PID returns the process id of the daemon's last start.
func (d *Daemon) PID() int { return d.proc.PID() }

// Running reports whether the daemon process is running.
func (d *Daemon) Running() bool { return d.proc.Running() }

// WaitReady waits until /readyz answers 200: lnd answers, NATS is
// connected and the sender role has resumed its holds.
func (d *Daemon) WaitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()

	var last error
	for {
		if !d.Running() {
			return d.failed("exited before it was ready")
		}
		if last = d.ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return d.failed(fmt.Sprintf("not ready: %v (last: %v)",
				ctx.Err(), last))
		}
	}
}

// ready asks /readyz once.
func (d *Daemon) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		d.OpsURL+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status,
			strings.TrimSpace(string(body)))
	}

	return nil
}

// failed builds an error about the daemon with the tail of its log.
func (d *Daemon) failed(what string) error {
	return fmt.Errorf("asynclspd %s (pid %d) %s; log %s ends:\n%s", d.Name,
		d.PID(), what, d.LogPath, proc.Tail(d.LogPath, 15))
}

// Stop stops the daemon with SIGTERM and waits for it to exit; after
// 40 s, or when ctx ends, it kills it. It fails if the daemon did not exit
// cleanly, or had exited without being asked to. Stopping a daemon that
// was stopped or killed before does nothing.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	asked := d.stopped
	d.stopped = true
	d.mu.Unlock()

	err := d.proc.Signal(syscall.SIGTERM)
	switch {
	case errors.Is(err, proc.ErrNotRunning) && asked:
		return nil
	case errors.Is(err, proc.ErrNotRunning):
		if d.proc.Done() == nil {
			return nil
		}

		return d.failed(fmt.Sprintf("had exited on its own (%v)",
			d.proc.ExitErr()))
	case err != nil:
		return fmt.Errorf("asynclspd %s: SIGTERM: %w", d.Name, err)
	}

	wctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := d.proc.Wait(wctx); err != nil {
		_ = d.proc.Signal(syscall.SIGKILL)
		_ = d.proc.Wait(context.Background())

		return d.failed("did not exit after SIGTERM: killed")
	}
	if err := d.proc.ExitErr(); err != nil {
		return d.failed(fmt.Sprintf("stopped uncleanly (%v)", err))
	}

	return nil
}

// Kill kills the daemon with SIGKILL, as a crash would, and waits for it
// to die.
func (d *Daemon) Kill() error {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()

	err := d.proc.Signal(syscall.SIGKILL)
	if errors.Is(err, proc.ErrNotRunning) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("asynclspd %s: SIGKILL: %w", d.Name, err)
	}

	return d.proc.Wait(context.Background())
}

// ExitErr says how the daemon's last start ended, once it is not running:
// nil for exit status 0 (and while it runs).
func (d *Daemon) ExitErr() error {
	if d.Running() {
		return nil
	}
	return d.proc.ExitErr()
}

// Pause freezes the daemon with SIGSTOP, as an overloaded host or a long
// GC pause would: its sockets stay open, nothing answers. Resume thaws it.
func (d *Daemon) Pause() error {
	if err := d.proc.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("asynclspd %s: SIGSTOP: %w", d.Name, err)
	}
	return nil
}

// Resume thaws a daemon Pause froze (SIGCONT); a daemon that is not
// running is left alone.
func (d *Daemon) Resume() error {
	err := d.proc.Signal(syscall.SIGCONT)
	if err != nil && !errors.Is(err, proc.ErrNotRunning) {
		return fmt.Errorf("asynclspd %s: SIGCONT: %w", d.Name, err)
	}
	return nil
}

// Restart starts the daemon again after Stop or Kill, on the same data
// dir, configuration and ports, and waits until it is ready.
func (d *Daemon) Restart(ctx context.Context) error {
	if d.Running() {
		return fmt.Errorf("asynclspd %s: restart: still running (pid %d)",
			d.Name, d.PID())
	}

	return d.start(ctx)
}

// Relaunch is Restart without the wait: it starts the daemon again after
// Stop or Kill and returns at once; WaitReady waits for it. A daemon whose
// NATS server is down (a receiver LSP on its sender LSP's embedded server)
// keeps trying to connect, and is ready only once the server is back.
func (d *Daemon) Relaunch() error {
	if d.Running() {
		return fmt.Errorf("asynclspd %s: relaunch: still running (pid %d)",
			d.Name, d.PID())
	}

	return d.launch()
}

// AdminToken returns the operator's token, which the daemon writes to its
// data dir at its first start.
func (d *Daemon) AdminToken() (string, error) {
	b, err := os.ReadFile(filepath.Join(d.Dir, adminTokenFile))
	if err != nil {
		return "", fmt.Errorf("asynclspd %s: admin token: %w", d.Name, err)
	}

	return strings.TrimSpace(string(b)), nil
}

// AdminClient returns a client of the admin API with the operator's
// token.
func (d *Daemon) AdminClient() (*adminclient.Client, error) {
	token, err := d.AdminToken()
	if err != nil {
		return nil, err
	}

	return adminclient.New(adminclient.Config{URL: d.APIURL, Token: token})
}

// OperatorClient returns a client of the sender API with the operator's
// token: it sees every wallet's payments, and a payment it cancels is
// canceled_by_operator.
func (d *Daemon) OperatorClient() (*senderclient.Client, error) {
	token, err := d.AdminToken()
	if err != nil {
		return nil, err
	}

	return senderclient.New(senderclient.Config{URL: d.APIURL, Token: token})
}

// SenderClient has the operator issue a wallet token named wallet through
// the admin API, and returns a client of the sender API with it, as that
// wallet's backend uses it: it sees its own payments only, and a payment
// it cancels is canceled_by_sender. A later call with the same name issues
// another token of the same wallet, which sees the same payments.
func (d *Daemon) SenderClient(ctx context.Context,
	wallet string) (*senderclient.Client, error) {

	admin, err := d.AdminClient()
	if err != nil {
		return nil, err
	}
	tok, err := admin.CreateToken(ctx, wallet, adminclient.RoleWallet)
	if err != nil {
		return nil, fmt.Errorf("asynclspd %s: wallet token for %s: %w",
			d.Name, wallet, err)
	}

	return senderclient.New(senderclient.Config{URL: d.APIURL,
		Token: tok.Bearer})
}

// ReceiverClient returns a client of the receiver API for the receiver
// whose key is receiver, signing with signer (its lnd), that refuses
// registration challenges of any LSP but this one.
func (d *Daemon) ReceiverClient(receiver onionmsg.NodeKey,
	signer onionmsg.Signer) (*receiverclient.Client, error) {

	return receiverclient.New(receiverclient.Config{
		BaseURL: d.APIURL, NodeKey: receiver, Signer: signer,
		LSPKey: d.NodeKey,
	})
}
