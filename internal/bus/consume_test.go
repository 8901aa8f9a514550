package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
	if got := counterValue(t, p.metrics.dropped.WithLabelValues(string(KindHeldHTLCAvailable), ReasonBadSignature)); got != 1 {
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
	// Past AckWait: an ack that had been lost would show as a redelivery.
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
