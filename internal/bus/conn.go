package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is an LSP's connection to the bus. It is safe for concurrent use.
type Conn struct {
	link
	self NodeKey

	// blocked are the peers whose messages are terminated unhandled.
	blocked map[NodeKey]bool
}

// Connect connects the LSP cfg.NodeKey to NATS. It retries until the first
// connection succeeds or ctx ends, but fails at once on what a retry
// cannot fix: a server without TLS where TLS is required (ErrPlainText),
// refused credentials, an untrusted certificate. Once connected, it
// reconnects forever with backoff.
func Connect(ctx context.Context, cfg ClientConfig) (*Conn, error) {
	cfg = cfg.withDefaults()
	l, err := dial(ctx, cfg, true, inboxPrefix(cfg.NodeKey))
	if err != nil {
		return nil, err
	}
	blocked := map[NodeKey]bool{}
	for _, k := range cfg.BlockedPeers {
		blocked[k] = true
		l.log.Warn("peer blocked: its messages will be dropped unhandled", "peer", k)
	}
	return &Conn{link: *l, self: cfg.NodeKey, blocked: blocked}, nil
}

// NodeKey is the LSP this connection speaks for.
func (c *Conn) NodeKey() NodeKey { return c.self }

// Connected reports whether the connection is up right now (it may be
// reconnecting), for readiness checks.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// EnsureStream creates or updates this LSP's own inbound stream. The
// server must allow it: an embedded or single-operator server does; on a
// shared server the hosting operator's Provisioner does it instead.
func (c *Conn) EnsureStream(ctx context.Context, sc StreamConfig) error {
	return ensureStream(ctx, c.js, c.self, sc, c.log)
}

// Provisioner is the hosting operator's connection that creates and
// updates the LSPs' inbound streams on a shared server.
type Provisioner struct {
	link
}

// ConnectProvisioner connects with ProvisionerPermissions in mind (its
// own reply inbox). cfg.NodeKey is not used.
func ConnectProvisioner(ctx context.Context, cfg ClientConfig) (*Provisioner, error) {
	cfg = cfg.withDefaults()
	l, err := dial(ctx, cfg, false, provisionerInbox)
	if err != nil {
		return nil, err
	}
	return &Provisioner{link: *l}, nil
}

// EnsureStream creates or updates the inbound stream of the LSP owner.
func (p *Provisioner) EnsureStream(ctx context.Context, owner NodeKey, sc StreamConfig) error {
	return ensureStream(ctx, p.js, owner, sc, p.log)
}

// link is what Conn and Provisioner share: the NATS connection and its
// lifecycle.
type link struct {
	cfg     ClientConfig
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *Metrics

	// closed is closed once the NATS connection is closed for good.
	closed <-chan struct{}
}

// Close drains the connection: subscriptions stop, published messages and
// acks are flushed, then it closes. It returns once the connection is
// closed. Stop Consume and ServeRequests (cancel their contexts) first.
//
// With no server to drain to (the connection is reconnecting), it just
// closes, and that is not an error: every durable Publish has waited for its
// ack, so what the reconnect buffer loses is at most acks and naks, whose
// messages JetStream redelivers. A stop while NATS is down is a clean stop.
func (l *link) Close() error {
	err := l.nc.Drain()
	switch {
	case errors.Is(err, nats.ErrConnectionReconnecting):
		// Drain has closed it.
		l.log.Info("NATS unreachable at close: closed without draining")
		err = nil
	case errors.Is(err, nats.ErrConnectionClosed):
		err = nil
	case err != nil:
		l.nc.Close()
	}
	<-l.closed
	return err
}

// dial connects, retrying while ctx lasts.
func dial(ctx context.Context, cfg ClientConfig, needKey bool, inbox string) (*link, error) {
	requireTLS, err := cfg.validate(needKey)
	if err != nil {
		return nil, err
	}
	metrics := cfg.Metrics
	if metrics == nil {
		metrics, _ = NewMetrics(nil)
	}
	log := cfg.Logger.With("component", "bus")
	for attempt := 0; ; attempt++ {
		closed := make(chan struct{})
		opts, err := natsOptions(cfg, requireTLS, inbox, log, metrics, closed)
		if err != nil {
			return nil, err
		}
		nc, err := opts.Connect()
		if err == nil {
			js, err := jetstream.New(nc)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("bus: jetstream: %w", err)
			}
			metrics.connected.Set(1)
			log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName(), "tls", requireTLS)
			return &link{cfg: cfg, nc: nc, js: js, log: log, metrics: metrics, closed: closed}, nil
		}
		if err := permanentConnectError(err); err != nil {
			return nil, err
		}
		wait := reconnectDelay(cfg, attempt)
		log.Warn("cannot reach NATS, retrying", "urls", cfg.URLs, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bus: connect to %s: %w (last error: %w)", strings.Join(cfg.URLs, ","), ctx.Err(), err)
		case <-cfg.Clock.TickAfter(wait):
		}
	}
}

// permanentConnectError returns a clear error for connection failures a
// retry cannot fix, and nil for the others.
func permanentConnectError(err error) error {
	var certErr *tls.CertificateVerificationError
	var authorityErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, nats.ErrSecureConnWanted):
		return fmt.Errorf("%w: the server does not offer TLS (set AllowPlainText only on a trusted private network): %w", ErrPlainText, err)
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		return fmt.Errorf("bus: NATS refused the credentials: %w", err)
	case errors.As(err, &certErr), errors.As(err, &authorityErr), errors.As(err, &hostErr):
		return fmt.Errorf("bus: NATS server certificate not trusted: %w", err)
	}
	return nil
}

// reconnectDelay doubles from ReconnectWait to MaxReconnectWait, with up
// to 25% jitter so that many LSPs do not reconnect in step.
func reconnectDelay(cfg ClientConfig, attempt int) time.Duration {
	d := cfg.MaxReconnectWait
	if attempt < 20 {
		d = min(cfg.ReconnectWait<<attempt, cfg.MaxReconnectWait)
	}
	return d + rand.N(d/4+1)
}

// natsOptions builds the nats.go options. closed is closed when the
// connection is closed for good.
func natsOptions(cfg ClientConfig, requireTLS bool, inbox string, log *slog.Logger, m *Metrics, closed chan struct{}) (nats.Options, error) {
	var once sync.Once
	o := nats.GetDefaultOptions()
	o.Servers = cfg.URLs
	o.Name = cfg.Name
	o.MaxReconnect = -1
	o.PingInterval = 5 * time.Second
	o.MaxPingsOut = 3
	o.DrainTimeout = 10 * time.Second
	o.InboxPrefix = inbox

	setters := []nats.Option{
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return reconnectDelay(cfg, attempts-1)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			m.connected.Set(0)
			if nc.IsClosed() || nc.IsDraining() {
				return // Close, not a failure
			}
			log.Warn("disconnected from NATS, reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.connected.Set(1)
			m.reconnects.Inc()
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted(), "server", nc.ConnectedServerName())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			m.connected.Set(0)
			once.Do(func() { close(closed) })
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("NATS error", "subject", subject, "err", err)
		}),
	}
	if requireTLS {
		setters = append(setters, nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
		if cfg.TLS.CAFile != "" {
			setters = append(setters, nats.RootCAs(cfg.TLS.CAFile))
		}
		if cfg.TLS.CertFile != "" {
			setters = append(setters, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
		}
	} else {
		// Never follow a cluster's gossip to another host in plain text.
		setters = append(setters, nats.IgnoreDiscoveredServers())
	}
	switch {
	case cfg.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKeySeedFile)
		if err != nil {
			return o, fmt.Errorf("%w: ClientConfig.NKeySeedFile: %w", ErrConfig, err)
		}
		setters = append(setters, opt)
	case cfg.CredsFile != "":
		setters = append(setters, nats.UserCredentials(cfg.CredsFile))
	}
	for _, set := range setters {
		if err := set(&o); err != nil {
			return o, fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return o, nil
}
