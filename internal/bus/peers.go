package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Why handed back: the reason label of the retried counter.
const (
	retryHandler   = "handler"    // the handler failed
	retryLater     = "later"      // the handler said Later
	retryQueueFull = "queue_full" // the peer's queue was full
	retryRate      = "rate"       // the peer was over its rate
	retryPeers     = "peers_full" // MaxPeers other peers were being served
	retryStopping  = "stopping"   // Consume was stopping
)

// dispatcher hands each inbound message to its sending peer's worker: one
// goroutine per active peer, handling that peer's messages one at a time
// from a bounded queue, so that a peer that floods or whose messages are
// slow to handle delays only itself. What does not fit (a full queue, a
// peer over its rate, too many peers at once) is handed back to JetStream
// at once with a delay, never held: a flood costs the pull loop one nak
// per message. It lives as long as one Consume call; stop ends every
// worker.
type dispatcher struct {
	c    *Conn
	h    Handler
	ctx  context.Context // Consume's: the handlers' contexts derive from it, without its cancel
	quit chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	peers map[NodeKey]*peer // peers with a running worker

	// buckets outlive a worker that exited when idle, so that a peer
	// cannot refill its bucket by pausing briefly; a bucket full again is
	// forgotten with its worker.
	buckets map[NodeKey]*bucket
}

// peer is one active peer's worker state.
type peer struct {
	key   NodeKey
	queue chan queued

	// throttled is set when the peer's messages start being handed back,
	// and cleared when its queue runs empty: one log line per episode.
	throttled bool
}

// queued is a message waiting for its peer's worker.
type queued struct {
	jm    jetstream.Msg
	msg   Msg
	since time.Time
}

func newDispatcher(ctx context.Context, c *Conn, h Handler) *dispatcher {
	return &dispatcher{c: c, h: h, ctx: ctx, quit: make(chan struct{}),
		peers: map[NodeKey]*peer{}, buckets: map[NodeKey]*bucket{}}
}

// dispatch settles jm at once (bad subject, blocked peer, over its share)
// or queues it for its peer's worker. It never blocks on a handler.
func (d *dispatcher) dispatch(jm jetstream.Msg) {
	c := d.c
	msg, kind, err := c.prepare(jm)
	if err != nil {
		c.settle(jm, msg, kind, err)
		return
	}
	now := c.cfg.Clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.buckets[msg.From]
	if b == nil {
		b = newBucket(c.cfg.PeerRate, c.cfg.PeerBurst, now)
		d.buckets[msg.From] = b
	}
	p := d.peers[msg.From]
	if p == nil {
		if len(d.peers) >= c.cfg.MaxPeers {
			d.handBack(jm, msg, nil, b, now, retryPeers)
			return
		}
		p = &peer{key: msg.From, queue: make(chan queued, c.cfg.PeerQueue)}
		d.peers[msg.From] = p
		d.wg.Add(1)
		go d.work(p)
	}
	if len(p.queue) == cap(p.queue) {
		d.handBack(jm, msg, p, b, now, retryQueueFull)
		return
	}
	if !b.take(now) {
		d.handBack(jm, msg, p, b, now, retryRate)
		return
	}
	// Only the dispatcher sends, under d.mu: there is room.
	p.queue <- queued{jm: jm, msg: msg, since: now}
}

// handBack naks a message the peer's share has no room for. Its delay is
// the longer of what its redeliveries have earned (HandBack: a peer that
// keeps flooding sees its messages come back less and less often) and the
// next free slot of the peer's pace (one per 1/PeerRate): a flood's
// messages come back spread over the time the peer's share needs for
// them, not all at once, so the pull is not swamped by them. d.mu is held.
func (d *dispatcher) handBack(jm jetstream.Msg, msg Msg, p *peer, b *bucket, now time.Time, reason string) {
	c := d.c
	delay := max(c.cfg.HandBack(msg.Delivered), b.slot(now))
	c.metrics.consumed.WithLabelValues(kindLabel(msg.Kind), resultRetried).Inc()
	c.metrics.retry(msg.Kind, reason, msg.From)
	if p != nil && !p.throttled {
		p.throttled = true
		c.msgLog(msg).Warn("peer over its share of inbound work, handing its messages back",
			"reason", reason, "retry_in", delay)
	} else if c.log.Enabled(d.ctx, slog.LevelDebug) {
		// Only then: a flood passes here once per message.
		c.msgLog(msg).Debug("message handed back", "reason", reason, "retry_in", delay)
	}
	if err := jm.NakWithDelay(delay); err != nil {
		c.msgLog(msg).Warn("nak failed", "err", err)
	}
}

// work handles p's messages one at a time until p has been idle for
// PeerIdle, or the dispatcher stops.
func (d *dispatcher) work(p *peer) {
	defer d.wg.Done()
	c := d.c
	for {
		select {
		case q := <-p.queue:
			// Stopping wins over work still queued: hand it back.
			select {
			case <-d.quit:
				d.giveBack(q)
				d.drain(p)
				return
			default:
			}
			d.run(p, q)
		case <-d.quit:
			d.drain(p)
			return
		case <-c.cfg.Clock.TickAfter(c.cfg.PeerIdle):
			d.mu.Lock()
			if len(p.queue) == 0 {
				delete(d.peers, p.key)
				if b := d.buckets[p.key]; b != nil && b.idle(c.cfg.Clock.Now()) {
					delete(d.buckets, p.key)
				}
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
		}
	}
}

// run hands one message to the handler and settles it.
func (d *dispatcher) run(p *peer, q queued) {
	c := d.c
	if waited := c.cfg.Clock.Now().Sub(q.since); waited > c.cfg.AckWait/4 {
		// Its AckWait has been running since it was pulled: restart it,
		// so that the handler gets the whole of it.
		if err := q.jm.InProgress(); err != nil {
			c.msgLog(q.msg).Warn("in-progress failed", "err", err)
		}
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), c.cfg.AckWait)
	err := d.h(hctx, q.msg)
	cancel()
	c.settle(q.jm, q.msg, q.msg.Kind, err)
	d.mu.Lock()
	if len(p.queue) == 0 {
		p.throttled = false
	}
	d.mu.Unlock()
}

// drain hands back what p still has queued.
func (d *dispatcher) drain(p *peer) {
	for {
		select {
		case q := <-p.queue:
			d.giveBack(q)
		default:
			return
		}
	}
}

// giveBack naks a queued message for prompt redelivery: Consume is
// stopping and will not start on it.
func (d *dispatcher) giveBack(q queued) {
	d.c.metrics.retry(q.msg.Kind, retryStopping, q.msg.From)
	if err := q.jm.Nak(); err != nil {
		d.c.msgLog(q.msg).Warn("nak failed", "err", err)
	}
}

// stop ends every worker: each finishes the message it is handling, hands
// back what it had queued, and exits. It returns once they all have.
func (d *dispatcher) stop() {
	close(d.quit)
	d.wg.Wait()
}

// bucket is a token bucket on the injected clock: burst tokens, refilled
// at rate per second; next paces the messages handed back.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	next   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

func (b *bucket) refill(now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
}

// take takes a token if there is one.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// slot books the next free slot of the peer's pace for a message handed
// back, and returns how long until it.
func (b *bucket) slot(now time.Time) time.Duration {
	if b.next.Before(now) {
		b.next = now
	}
	b.next = b.next.Add(time.Duration(float64(time.Second) / b.rate))
	return b.next.Sub(now)
}

// idle reports whether the bucket is full again and no slot is booked: it
// can be forgotten.
func (b *bucket) idle(now time.Time) bool {
	b.refill(now)
	return b.tokens >= b.burst && !b.next.After(now)
}
