package regtest

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
)

// BinEnv names the environment variable with the folder holding lnd,
// lncli, btcd and btcctl (the Makefile's regtest-bin target sets it).
const BinEnv = "ASYNCLSP_REGTEST_BIN"

// Channel sizes lnd accepts without the wumbo option, in satoshis.
const (
	MinChannelSat = 20_000
	MaxChannelSat = 16_777_215
)

// Defaults for Options.
const (
	DefaultChannelSat = 10_000_000
	DefaultPushSat    = 2_000_000
)

// ErrInvalidOptions is returned by Start for options it cannot use.
var ErrInvalidOptions = errors.New("invalid regtest options")

// binaries are the programs the harness needs in Options.BinDir.
var binaries = []string{"lnd", "lncli", "btcd", "btcctl"}

// Options configure a network. The zero value is usable when BinEnv is set.
type Options struct {
	// BinDir holds lnd, lncli, btcd and btcctl. Default: $BinEnv.
	BinDir string

	// Dir is where data, logs and configs go. Default: a new temporary
	// folder, removed by Close unless the network is marked KeepDir.
	// An existing Dir must be empty.
	Dir string

	// Detach lets the processes outlive this process (regtest-up).
	// Otherwise they are killed when it dies, even on a panic.
	Detach bool

	// AliceBobSat and BobCarolSat are the sizes of the public channels
	// alice -> bob and bob -> carol. Default DefaultChannelSat.
	AliceBobSat int64
	BobCarolSat int64

	// CarolDaveSat is the size of carol's private channel to dave, and
	// CarolDavePushSat what carol pushes to dave in it so dave can pay
	// too. Defaults DefaultChannelSat and DefaultPushSat; set
	// NoPush to push nothing.
	CarolDaveSat     int64
	CarolDavePushSat int64
	NoPush           bool

	// LndArgs adds command-line arguments for one node, by name (for
	// example {"bob": {"--requireinterceptor"}}).
	LndArgs map[string][]string

	// Logger receives the harness's progress. Default: a text log in
	// Dir/harness.log.
	Logger *slog.Logger
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.BinDir == "" {
		o.BinDir = os.Getenv(BinEnv)
	}
	if o.AliceBobSat == 0 {
		o.AliceBobSat = DefaultChannelSat
	}
	if o.BobCarolSat == 0 {
		o.BobCarolSat = DefaultChannelSat
	}
	if o.CarolDaveSat == 0 {
		o.CarolDaveSat = DefaultChannelSat
	}
	if o.CarolDavePushSat == 0 && !o.NoPush {
		o.CarolDavePushSat = DefaultPushSat
	}

	return o
}

// validate checks options after withDefaults.
func (o Options) validate() error {
	if o.BinDir == "" {
		return fmt.Errorf("%w: no binaries: set Options.BinDir or $%s "+
			"(make regtest-bin builds them)", ErrInvalidOptions, BinEnv)
	}
	if err := checkBinaries(o.BinDir); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}

	sizes := []struct {
		name string
		sat  int64
	}{
		{"AliceBobSat", o.AliceBobSat},
		{"BobCarolSat", o.BobCarolSat},
		{"CarolDaveSat", o.CarolDaveSat},
	}
	for _, s := range sizes {
		if s.sat < MinChannelSat || s.sat > MaxChannelSat {
			return fmt.Errorf("%w: %s %d outside [%d, %d]",
				ErrInvalidOptions, s.name, s.sat, MinChannelSat,
				MaxChannelSat)
		}
	}
	if o.CarolDavePushSat < 0 || o.CarolDavePushSat >= o.CarolDaveSat {
		return fmt.Errorf("%w: CarolDavePushSat %d must be in [0, %d)",
			ErrInvalidOptions, o.CarolDavePushSat, o.CarolDaveSat)
	}
	for name := range o.LndArgs {
		if !isNodeName(name) {
			return fmt.Errorf("%w: LndArgs for unknown node %q",
				ErrInvalidOptions, name)
		}
	}

	return nil
}

// checkBinaries reports the first binary missing from dir.
func checkBinaries(dir string) error {
	for _, b := range binaries {
		path := filepath.Join(dir, b)
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("%s missing in %s (make regtest-bin "+
				"builds it): %w", b, dir, err)
		}
		if info.IsDir() || info.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable", path)
		}
	}

	return nil
}
