package bus

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// ClientConfig configures a connection to NATS.
type ClientConfig struct {
	// URLs of the NATS server or cluster, e.g. tls://nats.example.com:4222.
	// Required.
	URLs []string

	// NodeKey is this LSP's Lightning node key: its identity in subjects.
	// Required by Connect; ignored by ConnectProvisioner.
	NodeKey NodeKey

	// NKeySeedFile is a file holding the NATS user NKey seed (SU...) to
	// authenticate with. At most one of NKeySeedFile and CredsFile.
	NKeySeedFile string

	// CredsFile is a NATS credentials file (user JWT and seed).
	CredsFile string

	// TLS configures TLS. It is used whenever a file is set, and always
	// for a non-loopback server.
	TLS TLSConfig

	// AllowPlainText allows a connection without TLS to a non-loopback
	// server. Only for a private network the operator trusts.
	AllowPlainText bool

	// Name is the connection name the server shows in its monitoring.
	Name string

	// Logger receives connection state changes. Nil means slog.Default().
	Logger *slog.Logger

	// Metrics, when set, counts what this connection does.
	Metrics *Metrics

	// Clock times the bus's own waits (connect and publish retries). Nil
	// means the wall clock.
	Clock clock.Clock

	// ReconnectWait is the first reconnect backoff; it doubles per failed
	// round up to MaxReconnectWait. Defaults 250ms and 10s.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration

	// RequestTimeout bounds Request when its context has no deadline, and
	// request handlers. Default 5s.
	RequestTimeout time.Duration

	// PublishAttemptTimeout bounds one attempt to get a PubAck; Publish
	// retries until its context ends. Default 2s.
	PublishAttemptTimeout time.Duration

	// AckWait is how long JetStream waits for a handler's verdict before
	// redelivering; handlers get it as their deadline. It also bounds the
	// delay of a message lost in flight when a NATS node fails. Default 10s.
	AckWait time.Duration

	// Backoff gives the delay before a message whose handler failed for
	// the delivered-th time is redelivered. Default: 1s doubling up to 5m.
	Backoff func(delivered uint64) time.Duration

	// PullBatch is how many messages the consumer keeps buffered. Default
	// 64. Buffered messages count against AckWait.
	PullBatch int

	// RequestWorkers is how many requests ServeRequests handles at once.
	// Default 4.
	RequestWorkers int
}

// TLSConfig names PEM files for TLS.
type TLSConfig struct {
	// CAFile verifies the server; empty means the system roots.
	CAFile string

	// CertFile and KeyFile are a client certificate, for servers that
	// require mutual TLS. Both or neither.
	CertFile string
	KeyFile  string
}

func (t TLSConfig) configured() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
}

// defaultBackoff doubles from 1s to 5m.
func defaultBackoff(delivered uint64) time.Duration {
	const first, max = time.Second, 5 * time.Minute
	if delivered <= 1 {
		return first
	}
	if delivered > 10 {
		return max
	}
	return min(first<<(delivered-1), max)
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.NewDefaultClock()
	}
	setDefault(&c.ReconnectWait, 250*time.Millisecond)
	setDefault(&c.MaxReconnectWait, 10*time.Second)
	setDefault(&c.RequestTimeout, 5*time.Second)
	setDefault(&c.PublishAttemptTimeout, 2*time.Second)
	setDefault(&c.AckWait, 10*time.Second)
	setDefault(&c.PullBatch, 64)
	setDefault(&c.RequestWorkers, 4)
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.Name == "" {
		c.Name = "asynclspd"
	}
	return c
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// validate checks the configuration and reports whether TLS is required.
func (c ClientConfig) validate(needKey bool) (requireTLS bool, err error) {
	if len(c.URLs) == 0 {
		return false, fmt.Errorf("%w: ClientConfig.URLs is empty", ErrConfig)
	}
	if needKey && !c.NodeKey.valid() {
		return false, fmt.Errorf("%w: ClientConfig.NodeKey is not set", ErrConfig)
	}
	if c.NKeySeedFile != "" && c.CredsFile != "" {
		return false, fmt.Errorf("%w: set ClientConfig.NKeySeedFile or CredsFile, not both", ErrConfig)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return false, fmt.Errorf("%w: ClientConfig.TLS.CertFile and KeyFile go together", ErrConfig)
	}
	requireTLS = c.TLS.configured()
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return false, fmt.Errorf("%w: ClientConfig.URLs: %q is not a URL with a host", ErrConfig, raw)
		}
		switch strings.ToLower(u.Scheme) {
		case "tls":
			requireTLS = true
		case "nats":
		default:
			return false, fmt.Errorf("%w: ClientConfig.URLs: %q: scheme must be nats or tls", ErrConfig, raw)
		}
		if !isLoopback(u.Hostname()) && !c.AllowPlainText {
			requireTLS = true
		}
	}
	return requireTLS, nil
}

// isLoopback reports whether host is a loopback IP or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
