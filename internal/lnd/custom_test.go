package lnd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests script lnd's custom message and peer event streams, which a
// real lnd breaks only on a restart.

// got is one result of a scripted stream's Recv.
type got[T any] struct {
	msg *T
	err error
}

// scripted returns its items, then blocks until its context ends.
type scripted[T any] struct {
	grpc.ClientStream
	ctx   context.Context
	items []got[T]
}

func (s *scripted[T]) Recv() (*T, error) {
	if len(s.items) == 0 {
		<-s.ctx.Done()
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
	it := s.items[0]
	s.items = s.items[1:]

	return it.msg, it.err
}

// fakeLightning plays scripted streams for SubscribeCustomMessages and
// SubscribePeerEvents, in order; answers ListPeers from a script too; and
// records SendCustomMessage calls, answering sendErr.
type fakeLightning struct {
	lnrpc.LightningClient

	mu         sync.Mutex
	customs    [][]got[lnrpc.CustomMessage]
	peerEvents [][]got[lnrpc.PeerEvent]
	listPeers  [][]route.Vertex
	nCustom    int
	nPeer      int
	nList      int
	sends      []*lnrpc.SendCustomMessageRequest
	sendErr    error
}

func (f *fakeLightning) RawClientWithMacAuth(ctx context.Context) (
	context.Context, time.Duration, lnrpc.LightningClient) {

	return ctx, time.Second, f
}

func (f *fakeLightning) SubscribeCustomMessages(ctx context.Context,
	_ *lnrpc.SubscribeCustomMessagesRequest, _ ...grpc.CallOption) (
	lnrpc.Lightning_SubscribeCustomMessagesClient, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nCustom >= len(f.customs) {
		return nil, status.Error(codes.Internal, "unexpected subscribe")
	}
	f.nCustom++

	return &scripted[lnrpc.CustomMessage]{ctx: ctx,
		items: f.customs[f.nCustom-1]}, nil
}

func (f *fakeLightning) SubscribePeerEvents(ctx context.Context,
	_ *lnrpc.PeerEventSubscription, _ ...grpc.CallOption) (
	lnrpc.Lightning_SubscribePeerEventsClient, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nPeer >= len(f.peerEvents) {
		return nil, status.Error(codes.Internal, "unexpected subscribe")
	}
	f.nPeer++

	return &scripted[lnrpc.PeerEvent]{ctx: ctx,
		items: f.peerEvents[f.nPeer-1]}, nil
}

func (f *fakeLightning) ListPeers(_ context.Context,
	_ *lnrpc.ListPeersRequest, _ ...grpc.CallOption) (
	*lnrpc.ListPeersResponse, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nList >= len(f.listPeers) {
		return nil, status.Error(codes.Internal, "unexpected ListPeers")
	}
	f.nList++
	resp := &lnrpc.ListPeersResponse{}
	for _, p := range f.listPeers[f.nList-1] {
		resp.Peers = append(resp.Peers, &lnrpc.Peer{PubKey: p.String()})
	}

	return resp, nil
}

func (f *fakeLightning) SendCustomMessage(_ context.Context,
	req *lnrpc.SendCustomMessageRequest, _ ...grpc.CallOption) (
	*lnrpc.SendCustomMessageResponse, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, req)
	if f.sendErr != nil {
		return nil, f.sendErr
	}

	return &lnrpc.SendCustomMessageResponse{}, nil
}

func testVertex(i byte) route.Vertex {
	var v route.Vertex
	v[0] = 0x02
	v[32] = i

	return v
}

func customMsg(from route.Vertex, typ uint32, data string) got[lnrpc.CustomMessage] {
	return got[lnrpc.CustomMessage]{msg: &lnrpc.CustomMessage{
		Peer: from[:], Type: typ, Data: []byte(data)}}
}

func peerEvent(p route.Vertex, online bool) got[lnrpc.PeerEvent] {
	typ := lnrpc.PeerEvent_PEER_OFFLINE
	if online {
		typ = lnrpc.PeerEvent_PEER_ONLINE
	}

	return got[lnrpc.PeerEvent]{msg: &lnrpc.PeerEvent{
		PubKey: hex.EncodeToString(p[:]), Type: typ}}
}

// take reads n updates, failing after a few seconds.
func take[T any](t *testing.T, sub *Subscription[T], n int) []T {
	t.Helper()
	var out []T
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case v, ok := <-sub.Updates():
			if !ok {
				t.Fatalf("subscription ended after %d updates: %v",
					len(out), sub.Err())
			}
			out = append(out, v)
		case <-timeout:
			t.Fatalf("%d updates, want %d", len(out), n)
		}
	}

	return out
}

// TestSubscribeCustomMessages: only the wanted types are delivered, with
// the sending peer; the stream lnd ends as it shuts down ("shutdown",
// code Unknown) and a dropped connection are both re-established; an
// error lnd will repeat ends the subscription.
func TestSubscribeCustomMessages(t *testing.T) {
	a, b := testVertex(1), testVertex(2)
	fake := &fakeLightning{customs: [][]got[lnrpc.CustomMessage]{
		{customMsg(a, 37913, "one"), customMsg(a, 40000, "other type"),
			{err: status.Error(codes.Unknown, "shutdown")}},
		{{err: status.Error(codes.Unavailable, "connection refused")}},
		{customMsg(b, 37913, "two"),
			{err: status.Error(codes.PermissionDenied, "macaroon")}},
	}}
	c := testClient(time.Minute)
	c.lightningSvc = fake
	defer c.Close()

	sub, err := c.SubscribeCustomMessages(context.Background(), 37913)
	if err != nil {
		t.Fatal(err)
	}
	msgs := take(t, sub, 2)
	want := []CustomMessage{{Peer: a, Type: 37913, Data: []byte("one")},
		{Peer: b, Type: 37913, Data: []byte("two")}}
	for i := range want {
		if fmt.Sprint(msgs[i]) != fmt.Sprint(want[i]) {
			t.Errorf("message %d = %+v, want %+v", i, msgs[i], want[i])
		}
	}
	<-sub.Done()
	if st, _ := status.FromError(errors.Unwrap(sub.Err())); st.Code() !=
		codes.PermissionDenied {

		t.Fatalf("ended with %v, want PermissionDenied", sub.Err())
	}
	if fake.nCustom != 3 {
		t.Fatalf("%d streams opened, want 3", fake.nCustom)
	}

	// Without types, every custom message is delivered; ending ctx ends
	// the subscription with ctx's error.
	fake2 := &fakeLightning{customs: [][]got[lnrpc.CustomMessage]{
		{customMsg(a, 37913, "x"), customMsg(b, 40000, "y")},
	}}
	c.lightningSvc = fake2
	ctx, cancel := context.WithCancel(context.Background())
	all, err := c.SubscribeCustomMessages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := take(t, all, 2); got[1].Type != 40000 || got[1].Peer != b {
		t.Fatalf("second message %+v", got[1])
	}
	cancel()
	<-all.Done()
	if !errors.Is(all.Err(), context.Canceled) {
		t.Fatalf("ended with %v, want context.Canceled", all.Err())
	}
}

// TestSendCustomMessage: lnd's answers for a peer that is not connected
// become ErrPeerNotConnected; a failed call is not repeated.
func TestSendCustomMessage(t *testing.T) {
	peer := testVertex(9)
	tests := []struct {
		name      string
		lndErr    error
		data      []byte
		want      error
		wantCalls int
	}{{
		name: "sent", data: []byte("{}"), wantCalls: 1,
	}, {
		name:   "not connected",
		lndErr: status.Error(codes.NotFound, "peer is not connected"),
		want:   ErrPeerNotConnected, wantCalls: 1,
	}, {
		name: "disconnected while lnd waited for it",
		lndErr: status.Error(codes.Unknown, "peer "+
			hex.EncodeToString(peer[:])+" disconnected"),
		want: ErrPeerNotConnected, wantCalls: 1,
	}, {
		name:   "lnd away: tried once",
		lndErr: status.Error(codes.Unavailable, "connection refused"),
		want:   ErrUnavailable, wantCalls: 1,
	}, {
		name: "too large: refused before the call",
		data: make([]byte, MaxCustomMessageSize+1),
		want: ErrInvalidRequest,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeLightning{sendErr: tc.lndErr}
			c := testClient(time.Minute)
			c.lightningSvc = fake
			defer c.Close()

			err := c.SendCustomMessage(context.Background(), peer,
				37913, tc.data)
			if tc.want == nil && err != nil ||
				tc.want != nil && !errors.Is(err, tc.want) {

				t.Fatalf("SendCustomMessage = %v, want %v", err,
					tc.want)
			}
			if len(fake.sends) != tc.wantCalls {
				t.Fatalf("%d calls, want %d", len(fake.sends),
					tc.wantCalls)
			}
			if tc.wantCalls > 0 {
				s := fake.sends[0]
				if route.Vertex(s.Peer) != peer || s.Type != 37913 ||
					string(s.Data) != string(tc.data) {

					t.Fatalf("sent %+v", s)
				}
			}
		})
	}
}

// TestSubscribePeerEvents: the peers connected when the stream opens come
// first, online; then lnd's events; after a reconnect the peers listed
// again, and offline those gone meanwhile.
func TestSubscribePeerEvents(t *testing.T) {
	a, b, c3 := testVertex(1), testVertex(2), testVertex(3)
	fake := &fakeLightning{
		peerEvents: [][]got[lnrpc.PeerEvent]{
			{peerEvent(b, false), peerEvent(c3, true),
				{err: status.Error(codes.Unavailable, "eof")}},
			{peerEvent(a, true)},
		},
		listPeers: [][]route.Vertex{{a, b}, {c3}},
	}
	c := testClient(time.Minute)
	c.lightningSvc = fake
	defer c.Close()

	sub, err := c.SubscribePeerEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	want := []PeerEvent{
		{a, true}, {b, true}, // listed at the first open
		{b, false}, {c3, true}, // lnd's events
		{a, false}, {c3, true}, // after the reconnect: a gone, c listed
		{a, true}, // lnd's event
	}
	events := take(t, sub, len(want))
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %v, want %v", events, want)
		}
	}
}

// TestConnectedPeers: the peers lnd lists, as node keys.
func TestConnectedPeers(t *testing.T) {
	a, b := testVertex(1), testVertex(2)
	fake := &fakeLightning{listPeers: [][]route.Vertex{{a, b}, {}}}
	c := testClient(time.Minute)
	c.lightningSvc = fake
	defer c.Close()
	for _, want := range [][]route.Vertex{{a, b}, {}} {
		got, err := c.ConnectedPeers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ConnectedPeers = %v, want %v", got, want)
		}
	}
}
