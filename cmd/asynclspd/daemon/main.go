package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main is asynclspd's main: it loads the configuration, runs the daemon
// until SIGINT or SIGTERM, and returns the exit code.
func Main(args []string) int {
	cfg, err := LoadConfig(args)
	var help *HelpError
	switch {
	case errors.As(err, &help):
		fmt.Println(help.Text)
		return 0
	case err != nil:
		fmt.Fprintf(os.Stderr, "asynclspd: configuration: %v\n", err)
		return 2
	case cfg.ShowVersion:
		fmt.Println("asynclspd", Version)
		return 0
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("asynclspd stopped", "component", "asynclspd", "err", err)
		return 1
	}
	log.Info("asynclspd stopped", "component", "asynclspd")
	return 0
}

func newLogger(cfg *Config) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
