package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/clock"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// recorder is an idempotent test handler: it records every delivery and
// the set of message ids handled.
type recorder struct {
	mu         sync.Mutex
	deliveries []Msg
	handled    map[int]int // message index -> successful handlings
	fail       func(Msg) error
}

func newRecorder(fail func(Msg) error) *recorder {
	return &recorder{handled: map[int]int{}, fail: fail}
}

func (r *recorder) handle(_ context.Context, m Msg) error {
	r.mu.Lock()
	r.deliveries = append(r.deliveries, m)
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(m); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handled[msgIndex(m.ID)]++
	return nil
}

func (r *recorder) count(i int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.handled[i]
}

func (r *recorder) deliveriesOf(i int) []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Msg
	for _, m := range r.deliveries {
		if msgIndex(m.ID) == i {
			out = append(out, m)
		}
	}
	return out
}

// waitHandled waits until every message index in ids was handled.
func (r *recorder) waitHandled(t *testing.T, timeout time.Duration, ids ...int) {
	t.Helper()
	waitFor(t, timeout, func() error {
		for _, i := range ids {
			if r.count(i) == 0 {
				return fmt.Errorf("message %d not handled", i)
			}
		}
		return nil
	})
}

// pair is a sender and a receiver LSP on one embedded server, with the
// receiver's stream in place.
type pair struct {
	srv              *Server
	sender, receiver *Conn
	metrics          *Metrics
	registry         *prometheus.Registry
}

func newPair(t *testing.T, edit ...func(*ClientConfig)) *pair {
	t.Helper()
	srv := startTestServer(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{srv.ClientURL()}
	p := &pair{
		srv:      srv,
		sender:   connectTest(t, urls, testKey(1)),
		receiver: connectTest(t, urls, testKey(2), append(edit, func(c *ClientConfig) { c.Metrics = m })...),
		metrics:  m,
		registry: reg,
	}
	if err := p.receiver.EnsureStream(testCtx(t), StreamConfig{}); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	return p
}

func (p *pair) publish(t *testing.T, ids ...int) {
	t.Helper()
	for _, i := range ids {
		data := []byte(fmt.Sprintf("envelope %d", i))
		if err := p.sender.Publish(testCtx(t), p.receiver.NodeKey(), KindHeldHTLCAvailable, testMsgID(i), data); err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
	}
}

// consumerInfo returns the receiver's durable consumer state.
func (p *pair) consumerInfo(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	cons, err := p.receiver.js.Consumer(testCtx(t), StreamName(p.receiver.NodeKey()), ConsumerName)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	info, err := cons.Info(testCtx(t))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

func TestConsumeDeliversWithMetadata(t *testing.T) {
	p := newPair(t)
	rec := newRecorder(nil)
	runConsumer(t, p.receiver, rec.handle)
	p.publish(t, 7)
	rec.waitHandled(t, 5*time.Second, 7)

	m := rec.deliveriesOf(7)[0]
	if m.From != p.sender.NodeKey() || m.Kind != KindHeldHTLCAvailable || m.ID != testMsgID(7) {
		t.Errorf("got from %s kind %s id %s", m.From, m.Kind, m.ID)
	}
	if string(m.Data) != "envelope 7" || m.Delivered != 1 || m.Seq != 1 || m.Stored.IsZero() {
		t.Errorf("got data %q delivered %d seq %d stored %v", m.Data, m.Delivered, m.Seq, m.Stored)
	}
}

func TestConsumeHandlerErrorRedelivers(t *testing.T) {
	p := newPair(t)
	rec := newRecorder(func(m Msg) error {
		if m.Delivered < 3 {
			return errors.New("sqlite busy")
		}
		return nil
	})
	runConsumer(t, p.receiver, rec.handle)
	p.publish(t, 1)
	rec.waitHandled(t, 5*time.Second, 1)

	ds := rec.deliveriesOf(1)
	if len(ds) != 3 {
		t.Fatalf("got %d deliveries, want 3 (two failures, one success)", len(ds))
	}
	for i, d := range ds {
		if d.Delivered != uint64(i+1) {
			t.Errorf("delivery %d: Delivered = %d", i, d.Delivered)
		}
	}
	if got := counterValue(t, p.metrics.consumed.WithLabelValues(string(KindHeldHTLCAvailable), resultRetried)); got != 2 {
		t.Errorf("retried counter = %v, want 2", got)
	}
	waitFor(t, 5*time.Second, func() error {
		if info := p.consumerInfo(t); info.NumAckPending != 0 {
			return fmt.Errorf("%d messages pending ack", info.NumAckPending)
		}
		return nil
	})
}

func TestConsumeDropTerminates(t *testing.T) {
	p := newPair(t)
	rec := newRecorder(func(m Msg) error {
		if msgIndex(m.ID) == 1 {
			return Drop(ReasonBadSignature, errors.New("signature does not verify"))
		}
		return nil
	})
	runConsumer(t, p.receiver, rec.handle)
	p.publish(t, 1, 2)
	rec.waitHandled(t, 5*time.Second, 2)

	// Terminated, not pending: JetStream will not deliver it again, and
	// the work queue no longer holds it.
	waitFor(t, 5*time.Second, func() error {
		info := p.consumerInfo(t)
		if info.NumAckPending != 0 || info.NumRedelivered != 0 {
			return fmt.Errorf("ack pending %d, redelivered %d", info.NumAckPending, info.NumRedelivered)
		}
		return nil
	})
	if n := len(rec.deliveriesOf(1)); n != 1 {
		t.Errorf("dropped message delivered %d times, want 1", n)
	}
	if got := counterValue(t, p.metrics.dropped.WithLabelValues(string(KindHeldHTLCAvailable), ReasonBadSignature, p.sender.NodeKey().String())); got != 1 {
		t.Errorf("dropped{bad_signature} = %v, want 1", got)
	}
}

func TestConsumeRestartDoesNotRedeliverHandled(t *testing.T) {
	p := newPair(t, func(c *ClientConfig) { c.AckWait = time.Second })
	rec := newRecorder(nil)
	stop := runConsumer(t, p.receiver, rec.handle)
	p.publish(t, 1)
	rec.waitHandled(t, 5*time.Second, 1)
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}

	runConsumer(t, p.receiver, rec.handle)
	p.publish(t, 2)
	rec.waitHandled(t, 5*time.Second, 2)
	// Nothing pending and nothing redelivered: message 1's ack reached the
	// server before the first consumer returned.
	waitFor(t, 5*time.Second, func() error {
		info := p.consumerInfo(t)
		if info.NumAckPending != 0 || info.NumRedelivered != 0 {
			return fmt.Errorf("ack pending %d, redelivered %d", info.NumAckPending, info.NumRedelivered)
		}
		return nil
	})
	if n := len(rec.deliveriesOf(1)); n != 1 {
		t.Errorf("message 1 delivered %d times after a consumer restart, want 1", n)
	}
}

// TestPublishDeduplicates: a publish repeated with the same id (a retry
// after a lost PubAck) is stored once; the same id from another sender is
// a different message.
func TestPublishDeduplicates(t *testing.T) {
	p := newPair(t)
	p.publish(t, 1, 1)
	other := connectTest(t, []string{p.srv.ClientURL()}, testKey(3))
	if err := other.Publish(testCtx(t), p.receiver.NodeKey(), KindHeldHTLCAvailable, testMsgID(1), []byte("same id, other sender")); err != nil {
		t.Fatal(err)
	}
	s, err := p.receiver.js.Stream(testCtx(t), StreamName(p.receiver.NodeKey()))
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

// TestPublishPerSenderQuota: a sender over its quota in the receiver's
// stream is refused at once, without retries; other senders are not.
func TestPublishPerSenderQuota(t *testing.T) {
	srv := startTestServer(t)
	urls := []string{srv.ClientURL()}
	flooder := connectTest(t, urls, testKey(1))
	receiver := connectTest(t, urls, testKey(2))
	if err := receiver.EnsureStream(testCtx(t), StreamConfig{MaxPerSender: 2}); err != nil {
		t.Fatal(err)
	}
	to := receiver.NodeKey()
	for i := range 2 {
		if err := flooder.Publish(testCtx(t), to, KindHeldHTLCAvailable, testMsgID(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	err := flooder.Publish(testCtx(t), to, KindHeldHTLCAvailable, testMsgID(2), nil)
	if err == nil || errors.Is(err, ErrPublish) {
		t.Fatalf("over quota: got %v, want a refusal that is not ErrPublish", err)
	}
	other := connectTest(t, urls, testKey(3))
	if err := other.Publish(testCtx(t), to, KindHeldHTLCAvailable, testMsgID(0), nil); err != nil {
		t.Fatalf("another sender refused: %v", err)
	}
}

func TestPublishWithoutStream(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := p.receiver.Publish(ctx, testKey(42), KindHeldHTLCAvailable, testMsgID(1), nil)
	if !errors.Is(err, ErrPublish) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrPublish after the deadline", err)
	}
	if err := p.sender.Consume(testCtx(t), newRecorder(nil).handle); !errors.Is(err, ErrNoStream) {
		t.Fatalf("Consume without a stream: got %v, want ErrNoStream", err)
	}
}

// TestPublishRetryWaitsOnClock: between attempts Publish waits on the
// injected clock; a clock that never moves allows exactly one attempt.
func TestPublishRetryWaitsOnClock(t *testing.T) {
	p := newPair(t)
	frozen := connectTest(t, []string{p.srv.ClientURL()}, testKey(5), func(c *ClientConfig) {
		c.Clock = clock.NewTestClock(time.Unix(0, 0))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err := frozen.Publish(ctx, testKey(42), KindHeldHTLCAvailable, testMsgID(1), nil)
	if !errors.Is(err, ErrPublish) || !strings.Contains(err.Error(), "(attempts: 1)") {
		t.Fatalf("got %v, want ErrPublish after exactly one attempt", err)
	}
}
