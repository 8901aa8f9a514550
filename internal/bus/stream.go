package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultMaxAge is how long an inbound stream keeps a message, handled or
// not: longer than any hold can live (payers cap the CLTV delta near 2016
// blocks, two weeks). No message is redelivered after it.
const DefaultMaxAge = 30 * 24 * time.Hour

// StreamConfig shapes an LSP's inbound stream. Zero values take the
// defaults.
type StreamConfig struct {
	// Replicas is 1 on a single server, 3 on a cluster. Default 1.
	Replicas int

	// MaxAge drops messages older than this, handled or not. Default 30
	// days: longer than any hold can live (payers cap the CLTV delta near
	// 2016 blocks, two weeks).
	MaxAge time.Duration

	// MaxPerSender caps the unhandled messages of one sender and kind. A
	// sender over it gets an error from Publish; other senders are not
	// affected. Default 100000.
	MaxPerSender int64

	// MaxBytes caps the stream's size. Default 1 GiB.
	MaxBytes int64

	// DuplicateWindow is how long JetStream remembers message ids to drop
	// a duplicate publish. Handlers must be idempotent regardless.
	// Default 10 minutes.
	DuplicateWindow time.Duration
}

func (sc StreamConfig) jetstream(owner NodeKey) jetstream.StreamConfig {
	if sc.Replicas <= 0 {
		sc.Replicas = 1
	}
	if sc.MaxAge <= 0 {
		sc.MaxAge = DefaultMaxAge
	}
	if sc.MaxPerSender <= 0 {
		sc.MaxPerSender = 100_000
	}
	if sc.MaxBytes <= 0 {
		sc.MaxBytes = 1 << 30
	}
	if sc.DuplicateWindow <= 0 {
		sc.DuplicateWindow = 10 * time.Minute
	}
	return jetstream.StreamConfig{
		Name:        StreamName(owner),
		Description: "asynclsp inbound messages of LSP " + owner.String(),
		Subjects:    streamSubjects(owner),
		// A message leaves the stream once the owner's consumer acked it.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  sc.Replicas,
		MaxAge:    sc.MaxAge,
		MaxBytes:  sc.MaxBytes,
		// Subjects are per (sender, kind): a sender flooding the stream
		// is refused once over its own quota, nobody else is.
		MaxMsgsPerSubject:    sc.MaxPerSender,
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgSize:           maxPayload,
		Duplicates:           sc.DuplicateWindow,
		DenyDelete:           true,
		DenyPurge:            true,
	}
}

// ensureStream creates owner's inbound stream, or updates it to sc.
func ensureStream(ctx context.Context, js jetstream.JetStream, owner NodeKey, sc StreamConfig, log *slog.Logger) error {
	if !owner.valid() {
		return fmt.Errorf("%w: stream owner %s", ErrInvalidKey, owner)
	}
	cfg := sc.jetstream(owner)
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("bus: create or update stream %s: %w", cfg.Name, err)
	}
	info := s.CachedInfo()
	log.Info("inbound stream ready", "stream", cfg.Name, "replicas", info.Config.Replicas, "messages", info.State.Msgs)
	return nil
}
