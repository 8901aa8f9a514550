package lsps0

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"golang.org/x/time/rate"
)

// Message is one LSPS0 message of a peer: the payload of a BOLT8 message
// of type MessageType, and the peer's node id, which BOLT8 authenticated.
type Message struct {
	Peer    onionmsg.NodeKey
	Payload []byte
}

// Transport carries LSPS0 messages between this node and its peers. The
// lnd one is NewLndTransport.
type Transport interface {
	// Receive returns the next message of type MessageType from any
	// peer, blocking until one arrives or ctx ends. Run calls it from one
	// goroutine, always with the same ctx. After an error Run backs off
	// and calls it again: the transport reconnects (on its own or on that
	// call).
	Receive(ctx context.Context) (Message, error)

	// Send sends payload to peer in one message of type MessageType. It
	// fails with an error wrapping ErrNotConnected if the peer is not
	// connected.
	Send(ctx context.Context, peer onionmsg.NodeKey, payload []byte) error
}

// ErrNotConnected means a response could not be sent: the peer is not
// connected (any more). 50:521-524: the LSP treats it as a response the
// client did not follow up on.
var ErrNotConnected = errors.New("lsps0: peer not connected")

// Backoff of Run after a receive error: from minRecvBackoff, doubling up
// to maxRecvBackoff.
const (
	minRecvBackoff = 500 * time.Millisecond
	maxRecvBackoff = 30 * time.Second
)

// dropLogEvery is how often, at most, a peer's dropped messages are logged.
const dropLogEvery = time.Minute

// Run answers the requests that arrive on t until ctx ends, then returns
// nil once every goroutine it started has ended (requests being handled
// finish first, within Limits.HandlerTimeout).
//
// Each request is answered to the peer that sent it, and only then: 50:226
// "SHOULD NOT send BOLT8 message ID 37913 unless the peer had already sent
// a BOLT8 message ID 37913". A peer's requests are handled one at a time,
// in order, by a worker of its own, from a queue of Limits.PeerQueue; at
// most Limits.MaxHandlers requests are handled at once, all peers together.
// A message over the peer's rate (a token bucket of Limits.PeerRate and
// PeerBurst), over its queue, or from a peer beyond Limits.MaxPeers is
// dropped unread: counted, and logged at most once a minute per peer. So a
// peer flooding 37913 delays only itself. An error of t is counted and
// logged, and Run receives again after a backoff.
func (s *Server) Run(ctx context.Context, t Transport) error {
	if t == nil {
		return errors.New("lsps0: Run without a transport")
	}
	d := &dispatcher{
		s: s, t: t, ctx: ctx, log: s.log,
		handlers: make(chan struct{}, s.limits.MaxHandlers),
		peers:    map[onionmsg.NodeKey]*peerState{},
	}
	defer d.wg.Wait()
	s.log.Info("serving LSPS0", "peer_rate", s.limits.PeerRate,
		"peer_burst", s.limits.PeerBurst, "max_handlers", s.limits.MaxHandlers)

	failures := 0
	for {
		msg, err := t.Receive(ctx)
		if ctx.Err() != nil {
			if err == nil {
				// Received as Run stopped: dropped like a queued one.
				s.metrics.drop(DropStopping)
			}
			return nil
		}
		if err != nil {
			s.metrics.recvErrs.Inc()
			level := slog.LevelWarn
			if failures > 0 {
				level = slog.LevelDebug
			}
			delay := recvBackoff(failures)
			s.log.Log(ctx, level, "receiving LSPS0 messages failed, retrying",
				"err", err, "retry_in", delay)
			failures++
			select {
			case <-s.clock.TickAfter(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		if failures > 0 {
			s.log.Info("receiving LSPS0 messages again")
			failures = 0
		}
		d.dispatch(msg)
	}
}

// recvBackoff returns minRecvBackoff * 2^failures, capped at
// maxRecvBackoff.
func recvBackoff(failures int) time.Duration {
	d := minRecvBackoff
	for i := 0; i < failures && d < maxRecvBackoff; i++ {
		d *= 2
	}
	return min(d, maxRecvBackoff)
}

// dispatcher hands each message to its peer's worker. It lives as long as
// one Run.
type dispatcher struct {
	s   *Server
	t   Transport
	ctx context.Context // Run's
	log *slog.Logger

	// handlers holds a token per request being handled: at most
	// Limits.MaxHandlers.
	handlers chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	peers  map[onionmsg.NodeKey]*peerState
	active int // peers with a worker

	// fullLogged is when dropping for MaxPeers was last logged.
	fullLogged time.Time
}

// peerState is what Run keeps of a peer. It outlives the peer's worker
// until the peer's bucket is full again, so a peer cannot refill it by
// pausing until its worker exits.
type peerState struct {
	key     onionmsg.NodeKey
	limiter *rate.Limiter

	// queue is the worker's; nil while no worker runs. Only dispatch
	// sends on it, under dispatcher.mu.
	queue chan []byte

	// dropped counts the drops since the last log line about them, at
	// loggedAt.
	dropped  int
	loggedAt time.Time
}

// dispatch queues msg for its peer's worker, starting one if needed, or
// drops it. It never blocks on a handler.
func (d *dispatcher) dispatch(msg Message) {
	lim := d.s.limits
	now := d.s.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[msg.Peer]
	if p == nil || p.queue == nil {
		if d.active >= lim.MaxPeers {
			d.s.metrics.drop(DropPeersFull)
			if now.Sub(d.fullLogged) >= dropLogEvery {
				d.fullLogged = now
				d.log.Warn("LSPS0: too many peers at once, dropping messages of new ones",
					"peer", msg.Peer, "max_peers", lim.MaxPeers)
			}
			return
		}
		if p == nil {
			p = &peerState{key: msg.Peer,
				limiter: rate.NewLimiter(rate.Limit(lim.PeerRate), lim.PeerBurst)}
			d.peers[msg.Peer] = p
		}
		p.queue = make(chan []byte, lim.PeerQueue)
		d.active++
		d.s.metrics.peers.Set(float64(d.active))
		d.wg.Add(1)
		go d.work(p, p.queue)
	}
	// A full queue costs no token: the peer's rate is spent only on
	// messages it gets handled.
	if len(p.queue) == cap(p.queue) {
		d.dropped(p, DropQueueFull, now)
		return
	}
	if !p.limiter.AllowN(now, 1) {
		d.dropped(p, DropRate, now)
		return
	}
	p.queue <- msg.Payload
}

// dropped counts a message of p dropped for reason and logs it, at most
// once a minute per peer. d.mu is held.
func (d *dispatcher) dropped(p *peerState, reason string, now time.Time) {
	d.s.metrics.drop(reason)
	p.dropped++
	if p.loggedAt.IsZero() || now.Sub(p.loggedAt) >= dropLogEvery {
		d.log.Warn("LSPS0: dropping messages of peer", "peer", p.key,
			"reason", reason, "dropped", p.dropped)
		p.loggedAt, p.dropped = now, 0
	}
}

// work handles p's messages one at a time, until p has been quiet for
// Limits.PeerIdle or Run stops.
func (d *dispatcher) work(p *peerState, queue chan []byte) {
	defer d.wg.Done()
	for {
		select {
		case payload := <-queue:
			d.handle(p.key, payload)
		case <-d.ctx.Done():
			d.stop(p, queue)
			return
		case <-d.s.clock.TickAfter(d.s.limits.PeerIdle):
			if d.idle(p, queue) {
				return
			}
		}
	}
}

// handle answers one request and sends the response to its peer.
func (d *dispatcher) handle(peer onionmsg.NodeKey, payload []byte) {
	// Stopping wins over a queued message.
	select {
	case <-d.ctx.Done():
		d.s.metrics.drop(DropStopping)
		return
	default:
	}
	select {
	case d.handlers <- struct{}{}:
	case <-d.ctx.Done():
		d.s.metrics.drop(DropStopping)
		return
	}
	// A request being handled is finished even when Run stops (its
	// commit, its response), within HandlerTimeout.
	base := context.WithoutCancel(d.ctx)
	hctx, cancel := context.WithTimeout(base, d.s.limits.HandlerTimeout)
	resp := d.s.Answer(hctx, peer, payload)
	cancel()
	<-d.handlers
	if resp == nil {
		return
	}

	sctx, cancel := context.WithTimeout(base, d.s.limits.HandlerTimeout)
	defer cancel()
	if err := d.t.Send(sctx, peer, resp); err != nil {
		if errors.Is(err, ErrNotConnected) {
			// 50:521-524: no different from a response delivered
			// and not followed up.
			d.s.metrics.drop(DropNotConnected)
			d.log.Debug("LSPS0 response not sent: peer gone", "peer", peer, "err", err)
			return
		}
		d.s.metrics.drop(DropSendFailed)
		d.log.Warn("LSPS0 response not sent", "peer", peer, "err", err)
	}
}

// idle ends p's worker if its queue is still empty, and forgets the peers
// whose buckets are full again. It reports whether the worker ends.
func (d *dispatcher) idle(p *peerState, queue chan []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(queue) > 0 {
		return false
	}
	d.endWorker(p)
	now := d.s.clock.Now()
	burst := float64(d.s.limits.PeerBurst)
	for k, q := range d.peers {
		if q.queue == nil && q.limiter.TokensAt(now) >= burst &&
			now.Sub(q.loggedAt) >= dropLogEvery {

			delete(d.peers, k)
		}
	}
	return true
}

// stop ends p's worker as Run stops: what it still has queued is dropped.
func (d *dispatcher) stop(p *peerState, queue chan []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for range len(queue) {
		<-queue
		d.s.metrics.drop(DropStopping)
	}
	d.endWorker(p)
}

// endWorker records that p has no worker any more. d.mu is held.
func (d *dispatcher) endWorker(p *peerState) {
	p.queue = nil
	d.active--
	d.s.metrics.peers.Set(float64(d.active))
}
