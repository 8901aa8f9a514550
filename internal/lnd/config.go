package lnd

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// Defaults for Config.
const (
	DefaultRPCTimeout = 30 * time.Second
	DefaultRetryFor   = 30 * time.Second
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// networks are the values Config.Network accepts (lndclient's names).
var networks = map[string]bool{
	"mainnet": true, "testnet": true, "testnet4": true, "signet": true,
	"regtest": true, "simnet": true,
}

// Config says how to reach one lnd node.
type Config struct {
	// Host is lnd's gRPC address, host:port.
	Host string `long:"host" description:"lnd gRPC address, host:port"`

	// TLSCertPath is lnd's tls.cert.
	TLSCertPath string `long:"tlscertpath" description:"path to lnd's tls.cert"`

	// MacaroonPath is one macaroon with every permission we need (lnd's
	// admin.macaroon). Set this or MacaroonDir.
	MacaroonPath string `long:"macaroonpath" description:"path to a macaroon with admin rights (admin.macaroon)"`

	// MacaroonDir is lnd's macaroon directory; the per-service macaroons
	// in it are used. Set this or MacaroonPath.
	MacaroonDir string `long:"macaroondir" description:"lnd's macaroon directory (instead of macaroonpath)"`

	// Network is the bitcoin network lnd must run on: mainnet, testnet,
	// testnet4, signet, regtest or simnet.
	Network string `long:"network" description:"bitcoin network lnd runs on"`

	// RPCTimeout bounds each unary call. Default DefaultRPCTimeout.
	RPCTimeout time.Duration `long:"rpctimeout" description:"timeout of one call to lnd"`

	// RetryFor is how long a call is repeated while lnd is unreachable,
	// starting or shutting down, before it fails with ErrUnavailable.
	// Streams are re-established for as long as their context lives.
	// Default DefaultRetryFor.
	RetryFor time.Duration `long:"retryfor" description:"how long calls are retried while lnd restarts"`

	// MinBackoff and MaxBackoff bound the wait between reconnect
	// attempts, which doubles from MinBackoff up to MaxBackoff.
	MinBackoff time.Duration `long:"minbackoff" description:"first wait before reconnecting to lnd"`
	MaxBackoff time.Duration `long:"maxbackoff" description:"longest wait between reconnect attempts"`

	// Clock times backoff and retry windows. Default: the wall clock.
	Clock clock.Clock `no-flag:"true"`

	// Logger receives the adapter's logs. Default: slog.Default().
	Logger *slog.Logger `no-flag:"true"`

	// Metrics counts the calls in flight to lnd. Default: counted, not
	// registered.
	Metrics *Metrics `no-flag:"true"`
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.RPCTimeout == 0 {
		cfg.RPCTimeout = DefaultRPCTimeout
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics, _ = NewMetrics(nil) // no registry, no error
	}

	return cfg
}

// Validate reports the first problem with the configuration.
func (cfg Config) Validate() error {
	switch {
	case cfg.Host == "":
		return fmt.Errorf("%w: lnd host is required", ErrInvalidRequest)

	case cfg.TLSCertPath == "":
		return fmt.Errorf("%w: lnd tls cert path is required",
			ErrInvalidRequest)

	case cfg.MacaroonPath == "" && cfg.MacaroonDir == "":
		return fmt.Errorf("%w: set a macaroon path or a macaroon dir",
			ErrInvalidRequest)

	case cfg.MacaroonPath != "" && cfg.MacaroonDir != "":
		return fmt.Errorf("%w: set a macaroon path or a macaroon dir, "+
			"not both", ErrInvalidRequest)

	case !networks[cfg.Network]:
		return fmt.Errorf("%w: unknown network %q", ErrInvalidRequest,
			cfg.Network)

	case cfg.RPCTimeout < 0 || cfg.RetryFor < 0 || cfg.MinBackoff < 0 ||
		cfg.MaxBackoff < 0:

		return fmt.Errorf("%w: durations must not be negative",
			ErrInvalidRequest)

	case cfg.MaxBackoff != 0 && cfg.MinBackoff > cfg.MaxBackoff:
		return fmt.Errorf("%w: min backoff %v above max backoff %v",
			ErrInvalidRequest, cfg.MinBackoff, cfg.MaxBackoff)
	}

	return nil
}
