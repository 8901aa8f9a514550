package lnd

import (
	"context"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// HtlcEventKind is what an HtlcEvent reports.
type HtlcEventKind uint8

// The kinds of HtlcEvent.
const (
	// HtlcSubscribed is the first event: lnd has registered the stream,
	// and every HTLC event from here on is delivered.
	HtlcSubscribed HtlcEventKind = iota + 1

	// HtlcResubscribed follows a break of the stream (lnd restarted or
	// the connection dropped): it is open again, but what happened in
	// between is lost, since lnd replays nothing. Reconcile, e.g. with
	// ListPendingInvoices.
	HtlcResubscribed

	// HtlcLinkFailed is lnd failing an HTLC that paid one of its
	// invoices back to the payer: the invoice was canceled (by
	// CancelInvoice or lnd's own expiry) or refused the HTLC. lnd's
	// LinkFailEvent of type RECEIVE.
	HtlcLinkFailed

	// HtlcSettled is lnd settling an HTLC that paid one of its invoices
	// (the preimage went to the payer). lnd's SettleEvent of type
	// RECEIVE.
	HtlcSettled

	// HtlcFinalFailed and HtlcFinalSettled say that an incoming HTLC's
	// outcome is locked in. lnd's FinalHtlcEvent, which carries no
	// event type: it comes for forwarded HTLCs as well as received ones.
	HtlcFinalFailed
	HtlcFinalSettled
)

// String names the kind.
func (k HtlcEventKind) String() string {
	switch k {
	case HtlcSubscribed:
		return "SUBSCRIBED"
	case HtlcResubscribed:
		return "RESUBSCRIBED"
	case HtlcLinkFailed:
		return "LINK_FAILED"
	case HtlcSettled:
		return "SETTLED"
	case HtlcFinalFailed:
		return "FINAL_FAILED"
	case HtlcFinalSettled:
		return "FINAL_SETTLED"
	default:
		return "UNKNOWN"
	}
}

// IsFailure reports whether the event says the HTLC failed back.
func (k HtlcEventKind) IsFailure() bool {
	return k == HtlcLinkFailed || k == HtlcFinalFailed
}

// HtlcEvent is one event of SubscribeHtlcEvents: what happened to an
// incoming HTLC, or a marker that the stream is (again) live.
type HtlcEvent struct {
	// Kind is what happened.
	Kind HtlcEventKind

	// Circuit is the incoming HTLC; zero for the markers. It equals the
	// InvoiceHTLC.Circuit of the HTLC in the invoice it paid.
	Circuit CircuitKey

	// FailureDetail is lnd's reason for an HtlcLinkFailed, e.g.
	// "INVOICE_CANCELED".
	FailureDetail string

	// Offchain is false for a final event whose HTLC was resolved on
	// chain.
	Offchain bool

	// Time is when lnd recorded the event; zero for the markers.
	Time time.Time
}

// SubscribeHtlcEvents follows every incoming HTLC of the node on one
// stream (routerrpc SubscribeHtlcEvents), reduced to what a hold invoice
// needs: HTLCs paying invoices failing back or settling, and the final
// outcome of incoming HTLCs. Sends and forwards are left out. lnd emits no
// event when it accepts an HTLC.
//
// It returns once lnd has registered the stream, and the first event is
// HtlcSubscribed. The stream has no backlog: if it breaks it is opened
// again with backoff, for as long as ctx lives, and HtlcResubscribed is
// delivered when it is live again; the caller must then reconcile what it
// may have missed.
func (c *Client) SubscribeHtlcEvents(ctx context.Context) (
	*Subscription[HtlcEvent], error) {

	const op = "SubscribeHtlcEvents"
	return startStream[HtlcEvent](c, ctx, op, &htlcStream{c: c})
}

// htlcStream is one HTLC event subscription and its current gRPC stream.
type htlcStream struct {
	c *Client

	stream      routerrpc.Router_SubscribeHtlcEventsClient
	closeStream context.CancelFunc

	// first is a message lnd sent before its SubscribedEvent, if it did:
	// it is delivered after the marker.
	first *routerrpc.HtlcEvent
}

// open subscribes and waits, for at most RPCTimeout, for lnd's
// SubscribedEvent: from then on lnd delivers every event.
func (s *htlcStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.router(streamCtx)
	stream, err := cl.SubscribeHtlcEvents(
		streamCtx, &routerrpc.SubscribeHtlcEventsRequest{},
	)
	if err != nil {
		cancel()
		return err
	}

	timer := time.AfterFunc(s.c.cfg.RPCTimeout, cancel)
	msg, err := stream.Recv()
	if !timer.Stop() && ctx.Err() == nil {
		cancel()
		return fmt.Errorf("%w: no SubscribedEvent within %v",
			ErrUnavailable, s.c.cfg.RPCTimeout)
	}
	if err != nil {
		cancel()
		return err
	}
	s.first = nil
	if msg.GetSubscribedEvent() == nil {
		s.first = msg
	}
	s.stream, s.closeStream = stream, cancel

	return nil
}

// close ends the open stream, if any.
func (s *htlcStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers a marker for each (re)opened stream, then its events,
// until ctx ends, reconnecting when the stream breaks.
func (s *htlcStream) run(ctx context.Context,
	sub *Subscription[HtlcEvent]) error {

	const op = "SubscribeHtlcEvents"
	failures := 0
	marker := HtlcSubscribed
	for {
		if !sub.send(ctx, HtlcEvent{Kind: marker}) {
			return mapError(op, ctxErr(ctx))
		}
		marker = HtlcResubscribed
		if s.first != nil {
			if ev, ok := htlcEventFromRPC(s.first); ok &&
				!sub.send(ctx, ev) {

				return mapError(op, ctxErr(ctx))
			}
			s.first = nil
		}

		for {
			msg, err := s.stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return mapError(op, ctxErr(ctx))
				}
				if !isTransient(err) {
					return mapError(op, err)
				}
				s.c.streamLost(s.c.log, op, failures, err)

				break
			}
			failures = 0
			ev, ok := htlcEventFromRPC(msg)
			if ok && !sub.send(ctx, ev) {
				return mapError(op, ctxErr(ctx))
			}
		}

		if err := s.c.reconnect(ctx, op, s.open, &failures); err != nil {
			return err
		}
		s.c.log.Info("lnd stream re-established", "op", op)
	}
}

// htlcEventFromRPC reduces one of lnd's HTLC events; false for the events
// left out (sends, forwards, further SubscribedEvents).
func htlcEventFromRPC(msg *routerrpc.HtlcEvent) (HtlcEvent, bool) {
	ev := HtlcEvent{
		Circuit: CircuitKey{
			ChanID:    msg.IncomingChannelId,
			HTLCIndex: msg.IncomingHtlcId,
		},
		Time: time.Unix(0, int64(msg.TimestampNs)),
	}
	receive := msg.EventType == routerrpc.HtlcEvent_RECEIVE

	switch e := msg.Event.(type) {
	case *routerrpc.HtlcEvent_LinkFailEvent:
		if !receive {
			return HtlcEvent{}, false
		}
		ev.Kind = HtlcLinkFailed
		ev.FailureDetail = e.LinkFailEvent.GetFailureDetail().String()

	case *routerrpc.HtlcEvent_SettleEvent:
		if !receive {
			return HtlcEvent{}, false
		}
		ev.Kind = HtlcSettled

	case *routerrpc.HtlcEvent_FinalHtlcEvent:
		ev.Kind = HtlcFinalFailed
		if e.FinalHtlcEvent.GetSettled() {
			ev.Kind = HtlcFinalSettled
		}
		ev.Offchain = e.FinalHtlcEvent.GetOffchain()

	default:
		return HtlcEvent{}, false
	}

	return ev, true
}
