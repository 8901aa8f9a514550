package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish sends a durable message of the given kind to the LSP to and
// returns once JetStream has stored it (the PubAck; with sync_interval
// always, on disk). It retries while ctx lasts: through a reconnect, or a
// stream leader election in a cluster. Every attempt carries the same
// Nats-Msg-Id, so JetStream drops a copy stored by an attempt whose ack was
// lost; receivers must still be idempotent (the window is finite).
//
// An error wrapping ErrPublish means the outcome is unknown: publish again
// with the same id. Any other error is a refusal that a retry will not fix
// (invalid arguments, a sender over its quota in the receiver's stream).
func (c *Conn) Publish(ctx context.Context, to NodeKey, kind Kind, id MsgID, data []byte) error {
	if !to.valid() {
		return fmt.Errorf("%w: recipient %s", ErrInvalidKey, to)
	}
	if err := kind.Validate(); err != nil {
		return err
	}
	m := &nats.Msg{
		Subject: DurableSubject(to, c.self, kind),
		Data:    data,
		Header: nats.Header{
			msgIDHeader:                    []string{natsMsgID(c.self, id)},
			jetstream.ExpectedStreamHeader: []string{StreamName(to)},
		},
	}
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.PublishAttemptTimeout)
		ack, err := c.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			if ack.Duplicate {
				c.log.Debug("publish was a duplicate", "to", to, "kind", kind, "msg_id", id, "seq", ack.Sequence)
			}
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && !transientJS[apiErr.ErrorCode] {
			return fmt.Errorf("bus: JetStream refused %s to %s: %w", kind, to, err)
		}
		if errors.Is(err, nats.ErrConnectionClosed) {
			return fmt.Errorf("%w: %s %s to %s: %w", ErrPublish, kind, id, to, ErrClosed)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s %s to %s (attempts: %d): %w (last error: %w)",
				ErrPublish, kind, id, to, attempt+1, ctx.Err(), err)
		}
		wait := reconnectDelay(c.cfg, attempt)
		c.log.Warn("publish not acknowledged, retrying", "to", to, "kind", kind, "msg_id", id, "attempt", attempt+1, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s %s to %s (attempts: %d): %w (last error: %w)",
				ErrPublish, kind, id, to, attempt+1, ctx.Err(), err)
		case <-c.cfg.Clock.TickAfter(wait):
		}
	}
}

// transientJS are the JetStream errors a publish retry can outlast. Any
// other API error is a refusal: a sender over its quota (a store failure,
// 10077), a message too large, a stream that does not match.
var transientJS = map[jetstream.ErrorCode]bool{
	10008: true, // JSClusterNotAvailErr: no meta leader yet
	10163: true, // JSStreamExpectedLastSeqPerSubjectNotReady
}
