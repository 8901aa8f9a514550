package lsps0

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/routing/route"
)

// fakeLnd plays lnd.Client's custom messages: each subscription is fed
// from msgs until the test ends it through end.
type fakeLnd struct {
	msgs chan lnd.CustomMessage
	end  chan error

	mu      sync.Mutex
	subs    int
	types   [][]uint32
	sends   []lnd.CustomMessage
	sendErr error
}

func newFakeLnd() *fakeLnd {
	return &fakeLnd{msgs: make(chan lnd.CustomMessage), end: make(chan error)}
}

func (f *fakeLnd) SubscribeCustomMessages(ctx context.Context, types ...uint32) (*lnd.Subscription[lnd.CustomMessage], error) {
	f.mu.Lock()
	f.subs++
	f.types = append(f.types, types)
	f.mu.Unlock()
	sub, feed := lnd.NewFeed[lnd.CustomMessage](ctx)
	go func() {
		for {
			select {
			case m := <-f.msgs:
				if !feed.Send(m) {
					feed.End(context.Canceled)
					return
				}
			case err := <-f.end:
				feed.End(err)
				return
			case <-feed.Done():
				feed.End(context.Canceled)
				return
			}
		}
	}()
	return sub, nil
}

func (f *fakeLnd) SendCustomMessage(_ context.Context, peer route.Vertex, msgType uint32, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, lnd.CustomMessage{Peer: peer, Type: msgType, Data: data})
	return f.sendErr
}

// TestLndTransport: messages come with the peer's key; a subscription
// that ended is opened again by the next Receive; lnd's
// ErrPeerNotConnected is ErrNotConnected; ctx ending closes the
// subscription.
func TestLndTransport(t *testing.T) {
	f := newFakeLnd()
	tr := NewLndTransport(f)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	receive := func() (Message, error) {
		t.Helper()
		type res struct {
			m   Message
			err error
		}
		ch := make(chan res, 1)
		go func() {
			m, err := tr.Receive(ctx)
			ch <- res{m, err}
		}()
		select {
		case r := <-ch:
			return r.m, r.err
		case <-time.After(10 * time.Second):
			t.Fatal("Receive did not return")
		}
		panic("unreachable")
	}
	peer := route.Vertex(testKey(4))
	go func() { f.msgs <- lnd.CustomMessage{Peer: peer, Type: MessageType, Data: []byte("{}")} }()
	m, err := receive()
	if err != nil || m.Peer != testKey(4) || string(m.Payload) != "{}" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}

	go func() { f.end <- errors.New("permission denied") }()
	if _, err := receive(); err == nil {
		t.Fatal("Receive after the subscription ended: no error")
	}
	go func() { f.msgs <- lnd.CustomMessage{Peer: peer, Type: MessageType, Data: []byte("again")} }()
	if m, err := receive(); err != nil || string(m.Payload) != "again" {
		t.Fatalf("Receive = %+v, %v", m, err)
	}
	f.mu.Lock()
	if f.subs != 2 || fmt.Sprint(f.types) != fmt.Sprint([][]uint32{{MessageType}, {MessageType}}) {
		t.Errorf("%d subscriptions for types %v, want 2 for 37913", f.subs, f.types)
	}
	f.mu.Unlock()

	if err := tr.Send(ctx, testKey(4), []byte("resp")); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.sendErr = fmt.Errorf("lnd SendCustomMessage: %w", lnd.ErrPeerNotConnected)
	f.mu.Unlock()
	if err := tr.Send(ctx, testKey(4), []byte("resp")); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send = %v, want ErrNotConnected", err)
	}
	f.mu.Lock()
	if len(f.sends) != 2 || f.sends[0].Peer != peer || f.sends[0].Type != MessageType ||
		string(f.sends[0].Data) != "resp" {
		t.Errorf("sent %+v", f.sends)
	}
	f.mu.Unlock()

	cancel()
	if _, err := receive(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive after cancel = %v", err)
	}
}

// The lnd client is the messenger the transport needs.
var _ LndMessenger = (*lnd.Client)(nil)
