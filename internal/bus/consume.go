package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a durable message delivered to this LSP.
type Msg struct {
	// From is the sending LSP, taken from the subject, which NATS
	// permissions bind to the sender's credentials. The handler must check
	// that the envelope in Data is signed by this key.
	From NodeKey

	// Kind is the message kind from the subject.
	Kind Kind

	// ID is the envelope id the sender published with; zero if the
	// publisher did not go through Publish.
	ID MsgID

	// Data is the payload, an onionmsg envelope, opaque to the bus.
	Data []byte

	// Delivered counts deliveries of this message, 1 the first time.
	Delivered uint64

	// Seq is the message's sequence number in the inbound stream.
	Seq uint64

	// Stored is when JetStream stored the message (server clock).
	Stored time.Time
}

// Handler handles one durable message. It returns nil only once the
// message's effect is committed (to SQLite): the bus acknowledges the
// message after that, and a redelivered or duplicated message must change
// nothing. An error wrapping ErrDrop (see Drop) terminates the message; a
// LaterError (see Later) hands it back for redelivery after its delay; any
// other error has it redelivered after a backoff.
type Handler func(ctx context.Context, m Msg) error

// consumeExpiry bounds one pull request; two missed heartbeats (sent at
// half of it) reveal a lost pull, e.g. after the consumer's leader moved in
// a cluster, within about consumeExpiry.
const consumeExpiry = 5 * time.Second

// Consume delivers this LSP's inbound durable messages to h until ctx
// ends; it then stops pulling, hands back buffered and queued messages for
// prompt redelivery, lets the messages in flight finish, and returns nil.
// It creates or updates the LSP's durable consumer first (the stream must
// exist: ErrNoStream otherwise) and recreates it with backoff after a
// failure. It returns ErrClosed if the connection is closed.
//
// Each sending peer (Msg.From) gets its own share of the work: its
// messages are handled one at a time, in the order they arrive, by a
// worker of its own, while other peers' messages are handled concurrently
// (up to MaxPeers peers at once); h must be safe for concurrent use. A
// peer whose queue (PeerQueue) is full, or that is over its rate (PeerRate,
// PeerBurst), has its message handed back for redelivery after a delay
// instead of holding up anyone else; a peer in BlockedPeers has its
// messages terminated and counted. See the package documentation.
//
// The handler's context is not canceled when ctx is: it ends at AckWait,
// after which JetStream redelivers anyway.
func (c *Conn) Consume(ctx context.Context, h Handler) error {
	d := newDispatcher(ctx, c, h)
	defer c.stopDispatcher(d)
	for attempt := 0; ; attempt++ {
		started, err := c.consumeOnce(ctx, d)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrNoStream), errors.Is(err, ErrClosed):
			return err
		case started:
			attempt = 0
		}
		wait := reconnectDelay(c.cfg, attempt)
		c.log.Warn("consumer stopped, restarting", "stream", StreamName(c.self), "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-c.cfg.Clock.TickAfter(wait):
		}
	}
}

// stopDispatcher waits for the messages in flight, then flushes their acks
// and the naks of the queued ones, so that they reach the server before
// Consume returns.
func (c *Conn) stopDispatcher(d *dispatcher) {
	d.stop()
	if !c.nc.IsConnected() {
		return // JetStream redelivers after AckWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.nc.FlushWithContext(ctx); err != nil && !c.nc.IsClosed() {
		c.log.Warn("flush after consume failed", "err", err)
	}
}

func (c *Conn) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "asynclspd inbound messages",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    -1, // until handled or dropped
		MaxAckPending: c.cfg.MaxAckPending,
	}
}

// consumeOnce runs one consumer iterator until ctx ends or it fails.
// started reports whether the iterator ran at all.
func (c *Conn) consumeOnce(ctx context.Context, d *dispatcher) (started bool, err error) {
	stream := StreamName(c.self)
	cons, err := c.js.CreateOrUpdateConsumer(ctx, stream, c.consumerConfig())
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return false, fmt.Errorf("%w: stream %s does not exist; the operator hosting NATS must provision it", ErrNoStream, stream)
	case err != nil:
		if c.nc.IsClosed() {
			return false, ErrClosed
		}
		return false, fmt.Errorf("bus: consumer %s on %s: %w", ConsumerName, stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(c.cfg.PullBatch), jetstream.PullExpiry(consumeExpiry))
	if err != nil {
		return false, fmt.Errorf("bus: consume %s: %w", stream, err)
	}
	defer c.release(it)
	c.log.Info("consuming inbound messages", "stream", stream, "consumer", ConsumerName)
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		switch {
		case ctx.Err() != nil:
			if err == nil {
				// Stopping: hand it back rather than start on it.
				_ = m.Nak()
			}
			return true, nil
		case errors.Is(err, jetstream.ErrMsgIteratorClosed) && c.nc.IsClosed():
			return true, ErrClosed
		case err != nil:
			return true, fmt.Errorf("bus: consume %s: %w", stream, err)
		}
		d.dispatch(m)
	}
}

// release stops the iterator and naks what it had buffered, so that those
// messages are redelivered now rather than after AckWait.
func (c *Conn) release(it jetstream.MessagesContext) {
	it.Drain()
	for n := 0; ; n++ {
		m, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			if n > 0 {
				c.log.Info("handed back buffered messages", "count", n)
			}
			break
		}
		if err := m.Nak(); err != nil {
			c.log.Warn("nak of buffered message failed", "err", err)
		}
	}
	if !c.nc.IsConnected() {
		// Nothing to flush to: the naks are lost with the connection,
		// and JetStream redelivers those messages after AckWait.
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.nc.FlushWithContext(ctx); err != nil && !c.nc.IsClosed() {
		c.log.Warn("flush after consume failed", "err", err)
	}
}

// prepare parses jm's subject and metadata into the Msg for the handler; an
// error drops the message. kind is set whenever the subject parsed.
func (c *Conn) prepare(jm jetstream.Msg) (Msg, Kind, error) {
	to, from, kind, err := parseSubject(durablePrefix, jm.Subject())
	if err != nil {
		return Msg{}, kind, Drop(ReasonBadSubject, err)
	}
	if to != c.self {
		return Msg{From: from, Kind: kind}, kind, Drop(ReasonMisdirected, fmt.Errorf("to-key %s is not %s", to, c.self))
	}
	msg, err := c.message(jm, from, kind)
	if err != nil {
		return Msg{From: from, Kind: kind}, kind, err
	}
	if c.blocked[from] {
		return msg, kind, Drop(ReasonBlocked, errors.New("peer blocked by configuration"))
	}
	return msg, kind, nil
}

// settle acks, naks with a delay, or terms jm, after err, the handler's or
// prepare's verdict.
func (c *Conn) settle(jm jetstream.Msg, msg Msg, kind Kind, err error) {
	label := kindLabel(kind)
	if reason, drop := dropReason(err); drop {
		c.metrics.consumed.WithLabelValues(label, resultDropped).Inc()
		c.metrics.drop(kind, reason, msg.From)
		log := c.msgLog(msg)
		if reason == ReasonBlocked {
			// Counted; one line per message would let it flood the log.
			log.Debug("dropping message of a blocked peer", "subject", jm.Subject())
		} else {
			log.Warn("dropping message", "subject", jm.Subject(), "reason", reason, "err", err)
		}
		if err := jm.TermWithReason(reason); err != nil {
			log.Warn("term failed", "err", err)
		}
		return
	}
	var later *LaterError
	if errors.As(err, &later) {
		// Its owner is not ready for it: handed back, not a failure.
		c.metrics.consumed.WithLabelValues(label, resultRetried).Inc()
		c.metrics.retry(kind, retryLater, msg.From)
		c.msgLog(msg).Info("message handed back for later", "err", later.Err,
			"retry_in", later.After)
		if err := jm.NakWithDelay(later.After); err != nil {
			c.msgLog(msg).Warn("nak failed", "err", err)
		}
		return
	}
	if err != nil {
		delay := c.cfg.Backoff(msg.Delivered)
		c.metrics.consumed.WithLabelValues(label, resultRetried).Inc()
		c.metrics.retry(kind, retryHandler, msg.From)
		log := c.msgLog(msg)
		log.Warn("handler failed, message will be redelivered", "err", err, "retry_in", delay)
		if err := jm.NakWithDelay(delay); err != nil {
			log.Warn("nak failed", "err", err)
		}
		return
	}
	c.metrics.consumed.WithLabelValues(label, resultAcked).Inc()
	if err := jm.Ack(); err != nil {
		// The message will be redelivered; the handler is idempotent.
		c.msgLog(msg).Warn("ack failed", "err", err)
	}
}

func (c *Conn) msgLog(m Msg) *slog.Logger {
	return c.log.With("from", m.From, "kind", m.Kind, "msg_id", m.ID, "seq", m.Seq, "delivered", m.Delivered)
}

// message builds the Msg handed to the handler.
func (c *Conn) message(jm jetstream.Msg, from NodeKey, kind Kind) (Msg, error) {
	meta, err := jm.Metadata()
	if err != nil {
		return Msg{}, Drop(ReasonMalformed, fmt.Errorf("JetStream metadata: %w", err))
	}
	id, _ := parseNatsMsgID(from, jm.Headers().Get(msgIDHeader))
	return Msg{
		From:      from,
		Kind:      kind,
		ID:        id,
		Data:      jm.Data(),
		Delivered: meta.NumDelivered,
		Seq:       meta.Sequence.Stream,
		Stored:    meta.Timestamp,
	}, nil
}
