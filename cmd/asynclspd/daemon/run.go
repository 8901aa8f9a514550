package daemon

import (
	"context"
	"errors"
	"fmt"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/console"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp"
	"github.com/asynclsp/asynclsp/senderlsp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version of asynclspd.
const Version = "0.1.0"

// daemon is one running asynclspd: what Run assembled, in start order.
type daemon struct {
	cfg *Config
	log *slog.Logger // handed to the parts, which add their component
	own *slog.Logger // the daemon's own lines
	reg *prometheus.Registry

	store    *holdstore.Store
	lnd      *lnd.Client
	nats     *bus.Server // nil with an external server
	conn     *bus.Conn
	node     *lspnet.Node
	sender   *senderlsp.Manager
	receiver *receiverlsp.Role
	console  *console.Console // set by listen

	ready readiness
}

// Run runs asynclspd until ctx ends (SIGTERM), then stops gracefully: it
// stops taking work (HTTP, NATS), lets the roles finish what is in flight
// (every commit), and closes the store last. It returns the first error
// that stopped it, nil after a clean stop.
func Run(ctx context.Context, cfg *Config, log *slog.Logger) (err error) {
	d := &daemon{cfg: cfg, log: log, own: log.With("component", "asynclspd"),
		reg: prometheus.NewRegistry()}
	d.reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() { err = errors.Join(err, d.close()) }()
	if err := d.open(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// Stopped while waiting for lnd or NATS: a stop, not a
			// failure.
			d.own.Info("stopped while starting", "err", err)
			return nil
		}
		return err
	}
	return d.serve(ctx)
}

// open connects to everything the roles need, in order; close undoes it.
func (d *daemon) open(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("datadir: %w", err)
	}
	var err error
	d.store, err = holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(cfg.DataDir, "asynclsp.db"), Logger: d.log})
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := d.ensureAdminToken(ctx); err != nil {
		return err
	}

	lndMetrics, err := lnd.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	d.lnd, err = lnd.Connect(ctx, lnd.Config{
		Host: cfg.Lnd.Host, TLSCertPath: cfg.Lnd.TLSCertPath,
		MacaroonPath: cfg.Lnd.MacaroonPath, Network: cfg.Network,
		Metrics: lndMetrics, Logger: d.log})
	if err != nil {
		return fmt.Errorf("lnd: %w", err)
	}
	pub := d.lnd.PubKey()
	self, err := onionmsg.NewNodeKey(pub[:])
	if err != nil {
		return fmt.Errorf("lnd node key: %w", err)
	}
	d.own.Info("connected to lnd", "node", self.String(), "host", cfg.Lnd.Host)

	urls := cfg.NATS.URLs
	if len(urls) == 0 {
		host, portStr, _ := net.SplitHostPort(cfg.NATS.EmbeddedListen)
		port, _ := strconv.Atoi(portStr)
		d.nats, err = bus.StartEmbedded(ctx, bus.EmbeddedConfig{
			StoreDir: filepath.Join(cfg.DataDir, "nats"), Host: host,
			Port: port, Logger: d.log})
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		urls = []string{d.nats.ClientURL()}
		d.own.Info("embedded NATS running", "url", urls[0])
	}
	metrics, err := bus.NewMetrics(d.reg)
	if err != nil {
		return err
	}
	blocked, err := cfg.NATS.blockedPeers()
	if err != nil {
		return err // validated already
	}
	d.conn, err = bus.Connect(ctx, bus.ClientConfig{
		URLs: urls, NodeKey: bus.NodeKey(self),
		NKeySeedFile: cfg.NATS.NKeySeedFile, CredsFile: cfg.NATS.CredsFile,
		TLS: bus.TLSConfig{CAFile: cfg.NATS.CAFile, CertFile: cfg.NATS.CertFile,
			KeyFile: cfg.NATS.KeyFile},
		AllowPlainText: cfg.NATS.AllowPlainText, AckWait: cfg.NATS.AckWait,
		BlockedPeers: blocked, PeerRate: cfg.NATS.PeerRate, PeerBurst: cfg.NATS.PeerBurst,
		Name:    "asynclspd " + self.String(),
		Metrics: metrics, Logger: d.log})
	if err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	if d.nats != nil || cfg.NATS.CreateStream {
		sc := bus.StreamConfig{Replicas: cfg.NATS.StreamReplicas}
		if err := d.conn.EnsureStream(ctx, sc); err != nil {
			return fmt.Errorf("NATS inbound stream: %w", err)
		}
	}
	d.node, err = lspnet.New(lspnet.Config{Transport: d.conn, Signer: d.lnd,
		Logger: d.log})
	if err != nil {
		return err
	}

	if cfg.Has(RoleSender) {
		d.sender, err = senderlsp.New(cfg.Sender, senderlsp.Deps{
			Store: d.store, Lnd: d.lnd, Net: d.node, Logger: d.log,
			Metrics: senderlsp.NewMetrics(d.reg, d.store)})
		if err != nil {
			return err
		}
	}
	if cfg.Has(RoleReceiver) {
		lspsMetrics, err := lsps0.NewMetrics(d.reg)
		if err != nil {
			return err
		}
		d.receiver, err = receiverlsp.New(receiverlsp.Config{
			NodeKey: self, Network: d.lnd.ChainParams(), Store: d.store,
			Messenger: d.node, Signer: d.lnd, MessageSigner: d.lnd,
			Height: d.lnd, Options: cfg.Receiver, Logger: d.log,
			LSPS: lsps0.NewServer(d.log, lsps0.WithLimits(cfg.LSPS0),
				lsps0.WithMetrics(lspsMetrics))})
		if err != nil {
			return err
		}
	}
	return nil
}

// serve runs the roles, the bus and the HTTP listeners until ctx ends or
// one of them fails.
func (d *daemon) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("%s: %w", what, err))
		}
	}
	run := func(what string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail(what, f(ctx))
		}()
	}

	mux := lspnet.NewMux()
	if d.sender != nil {
		d.sender.Register(mux)
		run("sender role", d.sender.Run)
	}
	if d.receiver != nil {
		d.receiver.Register(mux)
		run("receiver role", d.receiver.Run)
		// LSPS0 from the Lightning peers (bLIP-50), and their coming
		// online, which resets their LSPS5 cooldowns (55:620-645).
		run("LSPS0", func(ctx context.Context) error {
			return d.receiver.LSPS().Run(ctx, lsps0.NewLndTransport(d.lnd))
		})
		run("peer events", d.peersOnline)
	}
	// A bus message is acknowledged only once the state machine it belongs
	// to has taken it, durably: nothing is consumed before the roles have
	// rebuilt their state from the store. Until then messages wait in the
	// stream.
	run("bus", func(ctx context.Context) error {
		if d.sender != nil {
			select {
			case <-d.sender.Running():
			case <-ctx.Done():
				return nil
			}
		}
		return d.node.Run(ctx, mux)
	})

	servers, err := d.listen()
	if err != nil {
		cancel(err)
	}
	for _, s := range servers {
		run(s.name, s.serve)
	}
	if d.console != nil {
		run("console", d.console.Run)
	}
	d.ready.set(d.readyCheck)
	d.own.Info("asynclspd running", "roles", d.cfg.Roles, "api", d.cfg.API.Listen,
		"ops", d.cfg.Ops.Listen, "version", Version)

	<-ctx.Done()
	cause := context.Cause(ctx)
	if errors.Is(cause, context.Canceled) {
		cause = nil
		d.own.Info("stopping: no new work; finishing what is in flight")
	} else {
		d.own.Error("stopping after a failure", "err", cause)
	}
	d.ready.set(nil)

	// Stop taking work first: the HTTP listeners end, the roles and the
	// bus consumer see ctx end and return once their commits are done.
	stopped := make(chan struct{})
	go func() {
		shutdownCtx, done := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
		defer done()
		for _, s := range servers {
			s.shutdown(shutdownCtx)
		}
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(d.cfg.ShutdownTimeout + time.Second):
		return errors.Join(cause, errors.New("shutdown timed out; in-flight "+
			"work was abandoned (it resumes at the next start)"))
	}
	return cause
}

// close releases everything open opened, the store last.
func (d *daemon) close() error {
	var errs []error
	if d.conn != nil {
		errs = append(errs, d.conn.Close())
	}
	if d.nats != nil {
		d.nats.Shutdown()
	}
	if d.lnd != nil {
		errs = append(errs, d.lnd.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	return errors.Join(errs...)
}

// peersOnline tells the receiver role of each peer that comes online, until
// ctx ends. lnd's stream survives its restarts. Nothing here is worth
// stopping the daemon for: without the stream, a peer's webhook cooldowns
// reset only when it makes an LSPS0 request, and a failed reset costs at
// most one cooldown.
func (d *daemon) peersOnline(ctx context.Context) error {
	sub, err := d.lnd.SubscribePeerEvents(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.own.Warn("no lnd peer events: webhook cooldowns reset only on "+
				"LSPS0 requests", "err", err)
		}
		return nil
	}
	defer sub.Close()
	for ev := range sub.Updates() {
		if !ev.Online {
			continue
		}
		if err := d.receiver.PeerOnline(ctx, onionmsg.NodeKey(ev.Peer)); err != nil && ctx.Err() == nil {
			d.own.Warn("cannot reset a peer's webhook cooldowns", "peer", ev.Peer, "err", err)
		}
	}
	if err := sub.Err(); err != nil && ctx.Err() == nil {
		d.own.Warn("lnd peer events ended: webhook cooldowns reset only on "+
			"LSPS0 requests", "err", err)
	}
	return nil
}
