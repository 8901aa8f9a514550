package lnd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests script lnd's HTLC event stream and its ListInvoices.

// fakeHtlcRouter plays scripted streams for SubscribeHtlcEvents, in order;
// a script that is only an error fails the subscribe call itself.
type fakeHtlcRouter struct {
	routerrpc.RouterClient

	mu      sync.Mutex
	streams [][]got[routerrpc.HtlcEvent]
	opened  int
}

func (f *fakeHtlcRouter) RawClientWithMacAuth(ctx context.Context) (
	context.Context, time.Duration, routerrpc.RouterClient) {

	return ctx, time.Second, f
}

func (f *fakeHtlcRouter) SubscribeHtlcEvents(ctx context.Context,
	_ *routerrpc.SubscribeHtlcEventsRequest, _ ...grpc.CallOption) (
	routerrpc.Router_SubscribeHtlcEventsClient, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opened >= len(f.streams) {
		return nil, status.Error(codes.Internal, "unexpected subscribe")
	}
	f.opened++
	items := f.streams[f.opened-1]
	if len(items) == 1 && items[0].msg == nil {
		return nil, items[0].err
	}

	return &scripted[routerrpc.HtlcEvent]{ctx: ctx, items: items}, nil
}

func subscribed() got[routerrpc.HtlcEvent] {
	return got[routerrpc.HtlcEvent]{msg: &routerrpc.HtlcEvent{
		Event: &routerrpc.HtlcEvent_SubscribedEvent{
			SubscribedEvent: &routerrpc.SubscribedEvent{},
		}}}
}

func linkFail(typ routerrpc.HtlcEvent_EventType, chanID,
	htlc uint64) got[routerrpc.HtlcEvent] {

	return got[routerrpc.HtlcEvent]{msg: &routerrpc.HtlcEvent{
		IncomingChannelId: chanID, IncomingHtlcId: htlc,
		TimestampNs: 1_700_000_000_000_000_000, EventType: typ,
		Event: &routerrpc.HtlcEvent_LinkFailEvent{
			LinkFailEvent: &routerrpc.LinkFailEvent{
				FailureDetail: routerrpc.FailureDetail_INVOICE_CANCELED,
			}}}}
}

func settle(typ routerrpc.HtlcEvent_EventType, chanID,
	htlc uint64) got[routerrpc.HtlcEvent] {

	return got[routerrpc.HtlcEvent]{msg: &routerrpc.HtlcEvent{
		IncomingChannelId: chanID, IncomingHtlcId: htlc, EventType: typ,
		Event: &routerrpc.HtlcEvent_SettleEvent{
			SettleEvent: &routerrpc.SettleEvent{Preimage: make([]byte, 32)},
		}}}
}

// finalEvent is lnd's FinalHtlcEvent: it carries no event type.
func finalEvent(chanID, htlc uint64, settled bool) got[routerrpc.HtlcEvent] {
	return got[routerrpc.HtlcEvent]{msg: &routerrpc.HtlcEvent{
		IncomingChannelId: chanID, IncomingHtlcId: htlc,
		Event: &routerrpc.HtlcEvent_FinalHtlcEvent{
			FinalHtlcEvent: &routerrpc.FinalHtlcEvent{
				Settled: settled, Offchain: true,
			}}}}
}

func streamErr(code codes.Code, msg string) got[routerrpc.HtlcEvent] {
	return got[routerrpc.HtlcEvent]{err: status.Error(code, msg)}
}

// TestSubscribeHtlcEvents: receive failures and settlements and every
// final event are delivered with their circuit; sends and forwards are
// not. Each (re)opened stream starts with a marker, after lnd's
// SubscribedEvent; lnd's shutdown errors reconnect, a lasting error ends
// the subscription.
func TestSubscribeHtlcEvents(t *testing.T) {
	const (
		recv = routerrpc.HtlcEvent_RECEIVE
		fwd  = routerrpc.HtlcEvent_FORWARD
		send = routerrpc.HtlcEvent_SEND
	)
	fake := &fakeHtlcRouter{streams: [][]got[routerrpc.HtlcEvent]{
		{subscribed(), linkFail(fwd, 9, 1), linkFail(recv, 7, 5),
			finalEvent(7, 5, false), settle(send, 0, 0),
			settle(recv, 7, 6), finalEvent(7, 6, true),
			streamErr(codes.Unknown, "routerrpc server shutting down")},
		{streamErr(codes.Unavailable, "connection refused")},
		{subscribed(), finalEvent(8, 0, false),
			streamErr(codes.Unknown, "htlc event subscription terminated")},
		// lnd sent an event before its marker: it comes after ours.
		{finalEvent(8, 1, true), subscribed(),
			streamErr(codes.PermissionDenied, "macaroon")},
	}}
	c := testClient(time.Minute)
	c.routerSvc = fake
	defer c.Close()

	sub, err := c.SubscribeHtlcEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []HtlcEvent{
		{Kind: HtlcSubscribed},
		{Kind: HtlcLinkFailed, Circuit: CircuitKey{7, 5},
			FailureDetail: "INVOICE_CANCELED"},
		{Kind: HtlcFinalFailed, Circuit: CircuitKey{7, 5}, Offchain: true},
		{Kind: HtlcSettled, Circuit: CircuitKey{7, 6}},
		{Kind: HtlcFinalSettled, Circuit: CircuitKey{7, 6}, Offchain: true},
		{Kind: HtlcResubscribed},
		{Kind: HtlcFinalFailed, Circuit: CircuitKey{8, 0}, Offchain: true},
		{Kind: HtlcResubscribed},
		{Kind: HtlcFinalSettled, Circuit: CircuitKey{8, 1}, Offchain: true},
	}
	events := take(t, sub, len(want))
	for i := range want {
		ev := events[i]
		if i == 1 && !ev.Time.Equal(time.Unix(1_700_000_000, 0)) {
			t.Errorf("event 1 time %v", ev.Time)
		}
		ev.Time = time.Time{}
		if ev != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, ev, want[i])
		}
	}
	<-sub.Done()
	if st, _ := status.FromError(errors.Unwrap(sub.Err())); st.Code() !=
		codes.PermissionDenied {

		t.Fatalf("ended with %v, want PermissionDenied", sub.Err())
	}
	if fake.opened != 4 {
		t.Fatalf("%d streams opened, want 4", fake.opened)
	}
}

// TestSubscribeHtlcEventsWaitsForLnd: a stream that stays silent is not
// taken as live; the subscribe call returns once a stream brought lnd's
// SubscribedEvent.
func TestSubscribeHtlcEventsWaitsForLnd(t *testing.T) {
	fake := &fakeHtlcRouter{streams: [][]got[routerrpc.HtlcEvent]{
		{}, // no SubscribedEvent: given up after RPCTimeout
		{subscribed(), linkFail(routerrpc.HtlcEvent_RECEIVE, 3, 4)},
	}}
	c := testClient(time.Minute)
	c.cfg.RPCTimeout = 20 * time.Millisecond
	c.routerSvc = fake
	defer c.Close()

	ctx, cancel := context.WithCancel(context.Background())
	sub, err := c.SubscribeHtlcEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fake.opened != 2 {
		t.Fatalf("%d streams opened, want 2", fake.opened)
	}
	events := take(t, sub, 2)
	if events[0].Kind != HtlcSubscribed || events[1].Kind != HtlcLinkFailed ||
		events[1].Circuit != (CircuitKey{3, 4}) {

		t.Fatalf("events %+v", events)
	}
	cancel()
	<-sub.Done()
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Fatalf("ended with %v, want context.Canceled", sub.Err())
	}
}
