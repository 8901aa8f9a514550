package bus

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
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

	// MaxAckPending is how many inbound messages JetStream hands out
	// before it waits for their acks. A message handed back with a delay
	// still counts until it is redelivered: this must exceed what a
	// flooding peer can have in flight, or the flood holds up the
	// messages stored after it. Default 65536.
	MaxAckPending int

	// PeerQueue is how many messages of one peer wait for its worker
	// beyond the one being handled; more are handed back with a delay
	// (Backoff of their delivery count). Default 16.
	PeerQueue int

	// MaxPeers is how many peers' messages are handled at once, one
	// worker each; a message of yet another peer is handed back with a
	// delay. Default 64.
	MaxPeers int

	// PeerRate and PeerBurst bound how fast one peer's messages are
	// started: a token bucket of PeerBurst tokens refilled at PeerRate per
	// second; a message over it is handed back with a delay. Defaults 200
	// and 500.
	PeerRate  float64
	PeerBurst int

	// HandBack gives the delay before a message handed back for want of
	// room in its peer's share (queue full, over its rate, too many peers)
	// is redelivered, after its delivered-th delivery. Default: 1s
	// doubling up to 1m, plus up to a quarter of random jitter, so that a
	// flood comes back less and less often, and spread out.
	HandBack func(delivered uint64) time.Duration

	// PeerIdle is how long a peer's worker waits for its next message
	// before it exits. Default 1m.
	PeerIdle time.Duration

	// BlockedPeers are LSPs cut off: their messages are terminated and
	// counted (dropped, reason "blocked"), never handled.
	BlockedPeers []NodeKey
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

// defaultHandBack doubles from 1s to 1m, with up to 25% jitter.
func defaultHandBack(delivered uint64) time.Duration {
	const first, most = time.Second, time.Minute
	d := most
	if delivered < 8 {
		d = min(first<<max(delivered, 1)>>1, most)
	}
	return d + rand.N(d/4+1)
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
	setDefault(&c.MaxAckPending, 1<<16)
	setDefault(&c.PeerQueue, 16)
	setDefault(&c.MaxPeers, 64)
	setDefault(&c.PeerRate, 200)
	setDefault(&c.PeerBurst, 500)
	setDefault(&c.PeerIdle, time.Minute)
	if c.Backoff == nil {
		c.Backoff = defaultBackoff
	}
	if c.HandBack == nil {
		c.HandBack = defaultHandBack
	}
	if c.Name == "" {
		c.Name = "asynclspd"
	}
	return c
}

func setDefault[T int | float64 | time.Duration](v *T, def T) {
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
	for _, k := range c.BlockedPeers {
		if !k.valid() {
			return false, fmt.Errorf("%w: ClientConfig.BlockedPeers: %s is not a node key", ErrConfig, k)
		}
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
