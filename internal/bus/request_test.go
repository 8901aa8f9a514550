package bus

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs ServeRequests until the test ends.
func serve(t *testing.T, c *Conn, kind Kind, h RequestHandler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ServeRequests(ctx, kind, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeRequests: %v", err)
		}
	})
}

// waitServing waits until a request of kind from c to to gets an answer
// other than "no responders".
func waitServing(t *testing.T, c *Conn, to NodeKey, kind Kind) {
	t.Helper()
	waitFor(t, 5*time.Second, func() error {
		_, err := c.Request(testCtx(t), to, kind, []byte("ping"))
		if errors.Is(err, ErrNoResponders) {
			return err
		}
		return nil
	})
}

func TestRequestReply(t *testing.T) {
	p := newPair(t)
	var mu sync.Mutex
	var froms []NodeKey
	serve(t, p.receiver, KindInvoiceRequest, func(_ context.Context, from NodeKey, data []byte) ([]byte, error) {
		mu.Lock()
		froms = append(froms, from)
		mu.Unlock()
		return append([]byte("invoice for "), data...), nil
	})
	waitServing(t, p.sender, p.receiver.NodeKey(), KindInvoiceRequest)

	got, err := p.sender.Request(testCtx(t), p.receiver.NodeKey(), KindInvoiceRequest, []byte("hold 1"))
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if want := []byte("invoice for hold 1"); !bytes.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range froms {
		if f != p.sender.NodeKey() {
			t.Errorf("handler saw from %s, want the sender %s", f, p.sender.NodeKey())
		}
	}
	if got := counterValue(t, p.metrics.served.WithLabelValues(string(KindInvoiceRequest), resultAnswered)); got < 1 {
		t.Errorf("answered counter = %v", got)
	}
}

func TestRequestNoResponders(t *testing.T) {
	p := newPair(t)
	start := time.Now()
	_, err := p.sender.Request(testCtx(t), p.receiver.NodeKey(), KindInvoiceRequest, []byte("x"))
	if !errors.Is(err, ErrNoResponders) {
		t.Fatalf("got %v, want ErrNoResponders", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("no-responders took %v; NATS reports it at once", d)
	}
}

func TestRequestTimesOut(t *testing.T) {
	p := newPair(t, func(c *ClientConfig) { c.RequestTimeout = 300 * time.Millisecond })
	// Subscribed, so not "no responders", but never answers.
	sub, err := p.receiver.nc.SubscribeSync(RequestSubject(p.receiver.NodeKey(), p.sender.NodeKey(), KindInvoiceRequest))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := p.receiver.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.sender.Request(ctx, p.receiver.NodeKey(), KindInvoiceRequest, []byte("x"))
	if !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("got %v, want ErrRequestTimeout", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v, want about 300ms", d)
	}
	if _, err := sub.NextMsg(time.Second); err != nil {
		t.Errorf("the request never reached the receiver: %v", err)
	}
}

func TestRequestHandlerErrors(t *testing.T) {
	p := newPair(t)
	serve(t, p.receiver, KindInvoiceRequest, func(_ context.Context, _ NodeKey, data []byte) ([]byte, error) {
		switch string(data) {
		case "forged":
			return nil, Drop(ReasonBadSignature, errors.New("bad signature"))
		case "busy":
			return nil, errors.New("database is locked")
		}
		return []byte("ok"), nil
	})
	waitServing(t, p.sender, p.receiver.NodeKey(), KindInvoiceRequest)

	_, err := p.sender.Request(testCtx(t), p.receiver.NodeKey(), KindInvoiceRequest, []byte("forged"))
	if !errors.Is(err, ErrRejected) {
		t.Errorf("forged: got %v, want ErrRejected", err)
	}
	_, err = p.sender.Request(testCtx(t), p.receiver.NodeKey(), KindInvoiceRequest, []byte("busy"))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("busy: got %v, want ErrUnavailable", err)
	}
	if got := counterValue(t, p.metrics.dropped.WithLabelValues(string(KindInvoiceRequest), ReasonBadSignature, p.sender.NodeKey().String())); got != 1 {
		t.Errorf("dropped{bad_signature} = %v, want 1", got)
	}
}

// TestServeRequestsFinishesInFlight: a request being handled when
// ServeRequests is stopped is still answered, and ServeRequests returns
// only after its handler did.
func TestServeRequestsFinishesInFlight(t *testing.T) {
	p := newPair(t)
	entered := make(chan struct{}, 1)
	proceed := make(chan struct{})
	var handlerDone atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- p.receiver.ServeRequests(ctx, KindInvoiceRequest, func(hctx context.Context, _ NodeKey, data []byte) ([]byte, error) {
			if string(data) == "slow" {
				entered <- struct{}{}
				<-proceed
				defer handlerDone.Store(true)
				if hctx.Err() != nil {
					return nil, hctx.Err()
				}
			}
			return []byte("answer"), nil
		})
	}()
	waitServing(t, p.sender, p.receiver.NodeKey(), KindInvoiceRequest)

	answer := make(chan error, 1)
	go func() {
		got, err := p.sender.Request(testCtx(t), p.receiver.NodeKey(), KindInvoiceRequest, []byte("slow"))
		if err == nil && string(got) != "answer" {
			err = errors.New("wrong answer " + string(got))
		}
		answer <- err
	}()
	<-entered
	cancel()
	close(proceed)
	if err := <-done; err != nil {
		t.Fatalf("ServeRequests: %v", err)
	}
	if !handlerDone.Load() {
		t.Fatal("ServeRequests returned before its handler did")
	}
	if err := <-answer; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
}
