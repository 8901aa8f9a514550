package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// peerSet is a receiver and several sending LSPs on one embedded server.
type peerSet struct {
	*pair
	urls []string
}

func newPeerSet(t *testing.T, edit ...func(*ClientConfig)) *peerSet {
	t.Helper()
	p := newPair(t, edit...)
	return &peerSet{pair: p, urls: []string{p.srv.ClientURL()}}
}

// flood publishes n messages from c to the receiver, from a few goroutines
// at once, with indexes base..base+n-1.
func (s *peerSet) flood(t testing.TB, c *Conn, base, n int) {
	t.Helper()
	flood(t, c, s.receiver.NodeKey(), base, n)
}

// flood publishes n messages from c to to, from a few goroutines at once,
// with indexes base..base+n-1.
func flood(t testing.TB, c *Conn, to NodeKey, base, n int) {
	t.Helper()
	const publishers = 4
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += publishers {
				if err := c.Publish(testCtx(t), to, KindReleaseHeldHTLC, testMsgID(base+i), []byte("flood")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("flood: %v", err)
	}
}

// TestConsumeFloodDoesNotDelayOtherPeers: one peer floods 5,000 messages
// whose handler does not return before its deadline (10s); another peer's
// message is still handled within seconds (milliseconds, most runs; the
// 30 s bound is for -race on a busy machine). Handled one at a time for the
// whole stream, it waited for the flood: 10s per flood message here.
func TestConsumeFloodDoesNotDelayOtherPeers(t *testing.T) {
	s := newPeerSet(t, func(c *ClientConfig) {
		c.Backoff = func(uint64) time.Duration { return time.Second }
	})
	flooder := connectTest(t, s.urls, testKey(1))
	genuine := connectTest(t, s.urls, testKey(3))
	stuck := make(chan struct{})
	defer close(stuck)
	var handled, flooded atomic.Int64
	runConsumer(t, s.receiver, func(ctx context.Context, m Msg) error {
		if m.From == flooder.NodeKey() {
			flooded.Add(1)
			select { // a handler that hangs until its deadline
			case <-ctx.Done():
			case <-stuck:
			}
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	})
	t0 := time.Now()
	s.flood(t, flooder, 0, 5000)
	t.Logf("flood published in %v", time.Since(t0))
	waitFor(t, 5*time.Second, func() error {
		if flooded.Load() == 0 {
			return fmt.Errorf("flood not reaching the handler yet")
		}
		return nil
	})

	start := time.Now()
	if err := genuine.Publish(testCtx(t), s.receiver.NodeKey(), KindReleaseHeldHTLC, testMsgID(1), []byte("genuine")); err != nil {
		t.Fatal(err)
	}
	// Before per-peer workers it waited behind 5,000 handlers of 10 s
	// each; 30 s leaves -race on a loaded 2-core CI machine its margin.
	waitFor(t, 30*time.Second, func() error {
		if handled.Load() == 0 {
			return fmt.Errorf("the other peer's message not handled after %v", time.Since(start))
		}
		return nil
	})
	t.Logf("the other peer's message handled %v after its publish, during the flood", time.Since(start))
	if got := counterValue(t, s.metrics.retried.WithLabelValues(string(KindReleaseHeldHTLC), retryQueueFull, flooder.NodeKey().String())); got == 0 {
		t.Errorf("retried{queue_full, peer=flooder} = 0: the flood was not handed back")
	}
}

// TestConsumeBlockedPeer: a blocked peer's messages are terminated and
// counted under its key, never handled; others' are handled.
func TestConsumeBlockedPeer(t *testing.T) {
	s := newPeerSet(t, func(c *ClientConfig) { c.BlockedPeers = []NodeKey{testKey(1)} })
	rec := newRecorder(nil)
	var fromBlocked atomic.Int64
	runConsumer(t, s.receiver, func(ctx context.Context, m Msg) error {
		if m.From == testKey(1) {
			fromBlocked.Add(1)
		}
		return rec.handle(ctx, m)
	})
	s.publish(t, 1, 2, 3) // from testKey(1)
	other := connectTest(t, s.urls, testKey(3))
	if err := other.Publish(testCtx(t), s.receiver.NodeKey(), KindHeldHTLCAvailable, testMsgID(4), nil); err != nil {
		t.Fatal(err)
	}
	rec.waitHandled(t, 5*time.Second, 4)
	blocked := s.metrics.dropped.WithLabelValues(string(KindHeldHTLCAvailable), ReasonBlocked, testKey(1).String())
	waitFor(t, 5*time.Second, func() error {
		if n := counterValue(t, blocked); n != 3 {
			return fmt.Errorf("dropped{blocked, peer} = %v, want 3", n)
		}
		if info := s.consumerInfo(t); info.NumAckPending != 0 {
			return fmt.Errorf("%d messages pending ack", info.NumAckPending)
		}
		return nil
	})
	if n := fromBlocked.Load(); n != 0 {
		t.Errorf("handler saw %d messages of the blocked peer", n)
	}
}

// TestConsumePeerRate: on a frozen clock a peer gets its burst and no
// more; its other messages are handed back (counted under its key) until
// the clock moves on and refills its bucket.
func TestConsumePeerRate(t *testing.T) {
	clk := clock.NewTestClock(time.Unix(1_000_000, 0))
	s := newPeerSet(t, func(c *ClientConfig) {
		c.Clock = clk
		c.PeerRate = 1
		c.PeerBurst = 2
		c.HandBack = func(uint64) time.Duration { return 20 * time.Millisecond }
	})
	rec := newRecorder(nil)
	runConsumer(t, s.receiver, rec.handle)
	s.publish(t, 1, 2, 3, 4, 5)
	overRate := s.metrics.retried.WithLabelValues(string(KindHeldHTLCAvailable), retryRate, s.sender.NodeKey().String())
	waitFor(t, 5*time.Second, func() error {
		if n := counterValue(t, overRate); n < 3 {
			return fmt.Errorf("retried{rate} = %v, want 3 or more", n)
		}
		return nil
	})
	rec.mu.Lock()
	n := len(rec.handled)
	rec.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d messages handled on a frozen clock, want the burst, 2", n)
	}
	// A token a second: the clock moves on while the test polls. The
	// messages handed back come back paced, one a second (real time).
	waitFor(t, 20*time.Second, func() error {
		clk.SetTime(clk.Now().Add(time.Second))
		for _, i := range []int{1, 2, 3, 4, 5} {
			if rec.count(i) == 0 {
				return fmt.Errorf("message %d not handled", i)
			}
		}
		return nil
	})
}

// TestConsumeStopsWorkers: Consume returns only once the handler in flight
// has returned, and what a peer had queued is handed back for the next
// consumer, not lost.
func TestConsumeStopsWorkers(t *testing.T) {
	s := newPeerSet(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var inFlight atomic.Int64
	first := newRecorder(nil)
	stop := runConsumer(t, s.receiver, func(ctx context.Context, m Msg) error {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return first.handle(ctx, m)
	})
	s.publish(t, 1, 2, 3)
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("%d handlers still running after Consume returned", n)
	}
	if first.count(1) != 1 {
		t.Fatalf("the message in flight was not finished")
	}

	second := newRecorder(nil)
	runConsumer(t, s.receiver, second.handle)
	waitFor(t, 5*time.Second, func() error {
		for _, i := range []int{2, 3} {
			if first.count(i)+second.count(i) == 0 {
				return fmt.Errorf("message %d handled by neither consumer", i)
			}
		}
		return nil
	})
}

// TestPeerLabelBounded: the peer label names the first peers and then
// only "other".
func TestPeerLabelBounded(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	for i := range maxPeerLabels + 50 {
		labels[m.peerLabel(testKey(i))] = true
	}
	if len(labels) != maxPeerLabels+1 || !labels["other"] {
		t.Fatalf("%d distinct labels (other: %v), want %d and other", len(labels), labels["other"], maxPeerLabels+1)
	}
	if got := m.peerLabel(testKey(0)); got != testKey(0).String() {
		t.Fatalf("first peer labelled %q", got)
	}
	if got := m.peerLabel(NodeKey{}); got != "unknown" {
		t.Fatalf("invalid key labelled %q", got)
	}
}
