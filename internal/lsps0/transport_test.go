package lsps0

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// sent is one message a fakeTransport sent.
type sent struct {
	peer    onionmsg.NodeKey
	payload []byte
}

// fakeTransport delivers what the test puts in in (or errs), and records
// what Run sends.
type fakeTransport struct {
	in   chan Message
	errs chan error
	out  chan sent

	mu      sync.Mutex
	sendErr error
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{in: make(chan Message), errs: make(chan error, 16),
		out: make(chan sent, 4096)}
}

func (f *fakeTransport) Receive(ctx context.Context) (Message, error) {
	select {
	case err := <-f.errs:
		return Message{}, err
	default:
	}
	select {
	case err := <-f.errs:
		return Message{}, err
	case m := <-f.in:
		return m, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

func (f *fakeTransport) Send(_ context.Context, peer onionmsg.NodeKey, payload []byte) error {
	f.mu.Lock()
	err := f.sendErr
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.out <- sent{peer: peer, payload: payload}
	return nil
}

// send hands Run one message from peer (Run has read it when it returns).
func (f *fakeTransport) send(t testing.TB, peer onionmsg.NodeKey, payload []byte) {
	t.Helper()
	select {
	case f.in <- Message{Peer: peer, Payload: payload}:
	case <-time.After(10 * time.Second):
		t.Fatal("Run does not receive")
	}
}

// next returns the next message Run sent.
func (f *fakeTransport) next(t testing.TB) sent {
	t.Helper()
	select {
	case s := <-f.out:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("Run sent nothing in 10s")
	}
	panic("unreachable")
}

// idOf returns the id of a response.
func idOf(t testing.TB, resp []byte) string {
	t.Helper()
	var r struct{ ID string }
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatalf("%v: %s", err, resp)
	}
	return r.ID
}

// runServer runs s on tr until the test ends, and checks that Run then
// returns nil.
func runServer(t *testing.T, s *Server, tr Transport) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, tr) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return 10s after its context ended")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
