package bus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the nats-server asynclspd runs in-process
// when no NATS URL is configured.
type EmbeddedConfig struct {
	// StoreDir is the directory JetStream keeps its files in (under the
	// daemon's data dir). Required.
	StoreDir string

	// Host is the address to listen on; it must be a loopback address.
	// Empty means 127.0.0.1.
	Host string

	// Port is the client port; 0 picks a free one.
	Port int

	// ServerName names the server in logs and JetStream metadata. Empty
	// means "asynclsp-embedded".
	ServerName string

	// Logger receives the server's log lines. Nil means slog.Default().
	Logger *slog.Logger
}

// defaultStartTimeout bounds StartEmbedded when ctx has no deadline.
const defaultStartTimeout = 30 * time.Second

// Server is a running nats-server.
type Server struct {
	ns *server.Server
}

// StartEmbedded starts a nats-server with JetStream on, its files under
// cfg.StoreDir, every write fsynced (sync_interval: always), listening on
// loopback only, with no cluster, leaf node, websocket, MQTT or monitoring
// listener. ctx bounds the start only; stop the server with Shutdown.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Server, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	return startServer(ctx, opts, cfg.Logger)
}

func (cfg EmbeddedConfig) options() (*server.Options, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("%w: EmbeddedConfig.StoreDir is required", ErrConfig)
	}
	host := cfg.Host
	switch host {
	case "":
		host = "127.0.0.1"
	case "localhost":
		// Resolve it ourselves: nats-server would listen on every address
		// the name resolves to.
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: EmbeddedConfig.Host %q", ErrNotLoopback, cfg.Host)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: EmbeddedConfig.Port %d", ErrConfig, cfg.Port)
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default, 4222.
	}
	name := cfg.ServerName
	if name == "" {
		name = "asynclsp-embedded"
	}
	storeDir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("%w: EmbeddedConfig.StoreDir: %w", ErrConfig, err)
	}
	return &server.Options{
		ServerName:             name,
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               storeDir,
		SyncAlways:             true,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		MaxPayload:             maxPayload,
	}, nil
}

// maxPayload caps a message; envelopes are a few hundred bytes.
const maxPayload = 64 * 1024

// startServer starts a server with opts, logging through logger, and
// waits until it accepts clients (JetStream included).
func startServer(ctx context.Context, opts *server.Options, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: nats-server: %w", err)
	}
	ns.SetLoggerV2(&serverLogger{log: logger.With("component", "nats-server", "server", opts.ServerName)}, false, false, false)
	ns.Start()

	wait := defaultStartTimeout
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bus: nats-server not ready: %w", err)
		}
		return nil, fmt.Errorf("bus: nats-server not ready after %v", wait)
	}
	return &Server{ns: ns}, nil
}

// ClientURL is the URL clients connect to, e.g. nats://127.0.0.1:41327.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr is the client listener's address.
func (s *Server) Addr() *net.TCPAddr {
	a, _ := s.ns.Addr().(*net.TCPAddr)
	return a
}

// Name is the server's name.
func (s *Server) Name() string { return s.ns.Name() }

// Shutdown stops the server and returns once it has stopped: its
// listeners are closed and JetStream has flushed its files.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// serverLogger adapts nats-server's logger to slog.
type serverLogger struct{ log *slog.Logger }

func (l *serverLogger) Noticef(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// NumClients is how many client connections the server has now.
func (s *Server) NumClients() int { return s.ns.NumClients() }
