package lsps0

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// testEpoch is where the tests' clocks start.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// TestRunAnswersThePeer: each request is answered to the peer that sent
// it, and nothing is sent to a peer that sent nothing (50:226).
func TestRunAnswersThePeer(t *testing.T) {
	tr := newFakeTransport()
	stop := runServer(t, testServer(t), tr)
	tr.send(t, testKey(1), rpc("a1", "lsps0.list_protocols", "{}"))
	tr.send(t, testKey(2), rpc("b1", "test.peer", "{}"))
	tr.send(t, testKey(3), []byte("not json"))

	byPeer := map[onionmsg.NodeKey][]byte{}
	for range 3 {
		s := tr.next(t)
		if _, dup := byPeer[s.peer]; dup {
			t.Fatalf("two messages to %v", s.peer)
		}
		byPeer[s.peer] = s.payload
	}
	jsonEqual(t, byPeer[testKey(1)], `{"jsonrpc":"2.0","id":"a1","result":{"protocols":[5]}}`)
	jsonEqual(t, byPeer[testKey(2)], `{"jsonrpc":"2.0","id":"b1","result":{"peer":"`+testKey(2).String()+`"}}`)
	jsonEqual(t, byPeer[testKey(3)], `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,`+
		`"message":"parse error: the payload is not one JSON object"}}`)
	stop()
	if len(tr.out) != 0 {
		t.Fatalf("%d messages more", len(tr.out))
	}
}

// orderServer's test.order handler reports each call's "n" on started and
// returns once release[n] is closed.
type orderServer struct {
	*Server
	started chan string
	mu      sync.Mutex
	release map[string]chan struct{}
}

func newOrderServer(t *testing.T, opts ...Option) *orderServer {
	o := &orderServer{Server: NewServer(quietLog(), opts...), started: make(chan string, 100),
		release: map[string]chan struct{}{}}
	o.Handle(0, "test.order", func(_ context.Context, _ onionmsg.NodeKey, params json.RawMessage) (any, error) {
		var p struct{ N string }
		if err := DecodeParams(params, &p); err != nil {
			return nil, err
		}
		o.started <- p.N
		<-o.gate(p.N)
		return map[string]string{"n": p.N}, nil
	})
	return o
}

func (o *orderServer) gate(n string) chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.release[n]
	if c == nil {
		c = make(chan struct{})
		o.release[n] = c
	}
	return c
}

func (o *orderServer) nextStarted(t *testing.T) string {
	t.Helper()
	select {
	case n := <-o.started:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no handler started in 10s")
	}
	panic("unreachable")
}

func orderReq(n string) []byte { return rpc("id-"+n, "test.order", fmt.Sprintf(`{"N":%q}`, n)) }

// TestRunOnePeerAtATime: a peer's requests are handled one at a time, in
// order, while another peer's run alongside.
func TestRunOnePeerAtATime(t *testing.T) {
	o := newOrderServer(t)
	tr := newFakeTransport()
	runServer(t, o.Server, tr)
	a, b := testKey(1), testKey(2)
	for _, n := range []string{"a1", "a2", "a3"} {
		tr.send(t, a, orderReq(n))
	}
	if n := o.nextStarted(t); n != "a1" {
		t.Fatalf("first handled %s, want a1", n)
	}
	// a2 and a3 were received before b1: handled alongside a1, one of
	// them would start before b1 (and a dispatcher that waits for a1
	// would start nothing).
	tr.send(t, b, orderReq("b1"))
	if n := o.nextStarted(t); n != "b1" {
		t.Fatalf("started %s while a1 was handled, want b1 (another peer)", n)
	}
	close(o.gate("b1"))
	if s := tr.next(t); s.peer != b || idOf(t, s.payload) != "id-b1" {
		t.Fatalf("sent %s to %v", s.payload, s.peer)
	}
	for _, n := range []string{"a1", "a2", "a3"} {
		if n != "a1" {
			if got := o.nextStarted(t); got != n {
				t.Fatalf("started %s, want %s", got, n)
			}
		}
		close(o.gate(n))
		if s := tr.next(t); s.peer != a || idOf(t, s.payload) != "id-"+n {
			t.Fatalf("sent %s to %v, want the answer to %s", s.payload, s.peer, n)
		}
	}
}

// TestRunFloodDoesNotDelayOthers: a peer floods requests whose handler
// hangs; another peer's requests, sent between the flood's messages, are
// all answered while the flooder's first request is still being handled.
// The flood costs one handler slot and a queue of four; the rest is
// dropped unread.
func TestRunFloodDoesNotDelayOthers(t *testing.T) {
	m, _ := NewMetrics(nil)
	clk := clock.NewTestClock(testEpoch)
	s := testServer(t, WithClock(clk), WithMetrics(m),
		WithLimits(Limits{PeerBurst: 10, PeerQueue: 4, MaxHandlers: 2}))
	hung := make(chan struct{}, 1000)
	release := make(chan struct{})
	s.Handle(0, "test.hang", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		hung <- struct{}{}
		<-release
		return nil, nil
	})
	tr := newFakeTransport()
	runServer(t, s, tr)
	flooder, quiet := testKey(1), testKey(2)

	flood := 0
	sendFlood := func(n int) {
		for range n {
			tr.send(t, flooder, rpc(fmt.Sprintf("f%d", flood), "test.hang", "{}"))
			flood++
		}
	}
	sendFlood(1)
	select {
	case <-hung:
	case <-time.After(10 * time.Second):
		t.Fatal("the flood's first request not handled")
	}

	const quietRequests = 5
	var slowest time.Duration
	for i := range quietRequests {
		id := fmt.Sprintf("q%d", i)
		start := time.Now()
		tr.send(t, quiet, rpc(id, "lsps0.list_protocols", "{}"))
		sendFlood(200)
		s := tr.next(t)
		if s.peer != quiet || idOf(t, s.payload) != id {
			t.Fatalf("sent %s to %v, want the answer to %s", s.payload, s.peer, id)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("%d requests of a quiet peer answered during a flood of %d, the slowest in %v "+
		"(including 200 flood messages received after it)", quietRequests, flood, slowest)
	if slowest > 5*time.Second {
		t.Errorf("a quiet peer's answer took %v", slowest)
	}

	// One flood request handled, four queued; the rest dropped for the
	// full queue, before the rate (burst 10) was reached.
	const accepted = 5
	waitFor(t, 5*time.Second, func() error {
		if got := counterValue(t, m.dropped.WithLabelValues(DropQueueFull)); got != float64(flood-accepted) {
			return fmt.Errorf("dropped{queue_full} = %v, want %d", got, flood-accepted)
		}
		return nil
	})
	if got := counterValue(t, m.dropped.WithLabelValues(DropRate)); got != 0 {
		t.Errorf("dropped{rate} = %v, want 0", got)
	}
	close(release)
	for range accepted {
		if s := tr.next(t); s.peer != flooder {
			t.Fatalf("sent %s to %v, want the flooder's answers", s.payload, s.peer)
		}
	}
	if got := counterValue(t, m.requests.WithLabelValues("test.hang", "ok")); got != accepted {
		t.Errorf("test.hang answered %v times, want %d", got, accepted)
	}
}

// TestRunRateLimit: a peer's token bucket on the injected clock; drops
// are logged at most once a minute per peer.
func TestRunRateLimit(t *testing.T) {
	m, _ := NewMetrics(nil)
	clk := clock.NewTestClock(testEpoch)
	logs := &logLines{}
	s := NewServer(slog.New(slog.NewTextHandler(logs, nil)), WithClock(clk), WithMetrics(m),
		WithLimits(Limits{PeerRate: 1, PeerBurst: 3, PeerQueue: 100}))
	tr := newFakeTransport()
	runServer(t, s, tr)
	peer := testKey(7)
	n := 0
	sendN := func(k int) {
		for range k {
			tr.send(t, peer, rpc(fmt.Sprint(n), "lsps0.list_protocols", "{}"))
			n++
		}
	}
	answered := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			if s := tr.next(t); idOf(t, s.payload) != id {
				t.Fatalf("answered %s, want %s", s.payload, id)
			}
		}
	}
	dropped := func(want float64) {
		t.Helper()
		waitFor(t, 5*time.Second, func() error {
			if got := counterValue(t, m.dropped.WithLabelValues(DropRate)); got != want {
				return fmt.Errorf("dropped{rate} = %v, want %v", got, want)
			}
			return nil
		})
	}
	const logLine = "dropping messages of peer"

	// The counter moves before the line is written: wait for the line.
	logged := func(want int) {
		t.Helper()
		waitFor(t, 5*time.Second, func() error {
			if c := logs.count(logLine); c != want {
				return fmt.Errorf("%d log lines about the drops, want %d", c, want)
			}
			return nil
		})
	}

	sendN(5) // the burst of 3 passes
	answered("0", "1", "2")
	dropped(2)
	logged(1)

	clk.SetTime(testEpoch.Add(time.Second)) // one more token
	sendN(2)
	answered("5")
	dropped(3)
	if c := logs.count(logLine); c != 1 {
		t.Fatalf("%d log lines within the minute, want 1", c)
	}

	clk.SetTime(testEpoch.Add(time.Minute + time.Second)) // a full bucket again
	sendN(4)
	answered("7", "8", "9")
	dropped(4)
	logged(2) // a minute later
}

// TestRunReceiveErrors: Run backs off on the injected clock after the
// transport fails, then receives again.
func TestRunReceiveErrors(t *testing.T) {
	m, _ := NewMetrics(nil)
	clk := clock.NewTestClock(testEpoch)
	tr := newFakeTransport()
	for range 3 {
		tr.errs <- errors.New("stream broke")
	}
	runServer(t, testServer(t, WithClock(clk), WithMetrics(m)), tr)

	msg := Message{Peer: testKey(1), Payload: rpc("after", "lsps0.list_protocols", "{}")}
	deadline := time.After(10 * time.Second)
	for delivered := false; !delivered; {
		clk.SetTime(clk.Now().Add(time.Minute)) // past any backoff
		select {
		case tr.in <- msg:
			delivered = true
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("Run does not receive after transport errors")
		}
	}
	if s := tr.next(t); idOf(t, s.payload) != "after" {
		t.Fatalf("sent %s", s.payload)
	}
	if got := counterValue(t, m.recvErrs); got != 3 {
		t.Fatalf("receive_errors_total = %v, want 3", got)
	}
}

// TestRunStops: when its context ends Run lets the request being handled
// finish and answers it, drops what is queued, and returns nil once every
// worker has ended.
func TestRunStops(t *testing.T) {
	m, _ := NewMetrics(nil)
	o := newOrderServer(t, WithMetrics(m))
	tr := newFakeTransport()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, tr) }()
	for _, n := range []string{"1", "2", "3"} {
		tr.send(t, testKey(1), orderReq(n))
	}
	if n := o.nextStarted(t); n != "1" {
		t.Fatalf("started %s", n)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a request was being handled", err)
	default:
	}
	var finished atomic.Bool
	go func() {
		finished.Store(true)
		close(o.gate("1"))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !finished.Load() {
		t.Fatal("Run returned before the handler did")
	}
	if s := tr.next(t); idOf(t, s.payload) != "id-1" {
		t.Fatalf("sent %s, want the answer to 1", s.payload)
	}
	if got := counterValue(t, m.dropped.WithLabelValues(DropStopping)); got != 2 {
		t.Errorf("dropped{stopping} = %v, want 2", got)
	}
	if got := counterValue(t, m.peers); got != 0 {
		t.Errorf("active_peers = %v after Run, want 0", got)
	}
	select {
	case n := <-o.started:
		t.Fatalf("started %s after Run stopped", n)
	default:
	}
}

// TestRunDrops: responses to a peer gone, failed sends and peers over
// MaxPeers are counted by reason.
func TestRunDrops(t *testing.T) {
	m, _ := NewMetrics(nil)
	o := newOrderServer(t, WithMetrics(m), WithLimits(Limits{MaxPeers: 1}))
	tr := newFakeTransport()
	runServer(t, o.Server, tr)
	want := func(reason string, n float64) {
		t.Helper()
		waitFor(t, 5*time.Second, func() error {
			if got := counterValue(t, m.dropped.WithLabelValues(reason)); got != n {
				return fmt.Errorf("dropped{%s} = %v, want %v", reason, got, n)
			}
			return nil
		})
	}

	tr.send(t, testKey(1), orderReq("1"))
	o.nextStarted(t)
	tr.send(t, testKey(2), rpc("x", "lsps0.list_protocols", "{}")) // a second peer
	want(DropPeersFull, 1)

	tr.mu.Lock()
	tr.sendErr = fmt.Errorf("lnd: %w", ErrNotConnected)
	tr.mu.Unlock()
	close(o.gate("1"))
	want(DropNotConnected, 1)

	tr.mu.Lock()
	tr.sendErr = errors.New("lnd unavailable")
	tr.mu.Unlock()
	tr.send(t, testKey(1), orderReq("2"))
	o.nextStarted(t)
	close(o.gate("2"))
	want(DropSendFailed, 1)
}
