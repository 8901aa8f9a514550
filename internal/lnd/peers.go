package lnd

import (
	"context"
	"fmt"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
)

// PeerEvent says that a peer connected to the node (Online) or
// disconnected from it.
type PeerEvent struct {
	Peer   route.Vertex
	Online bool
}

// SubscribePeerEvents delivers peers coming online and going offline. Each
// time the stream opens (at first and after every reconnect) it reads the
// peers connected at that moment and delivers each of them online, and
// every peer it had delivered online that is gone, offline; then lnd's
// events. After an lnd restart every peer has just connected again, so
// none is missed; a peer may be reported online twice in a row. It never
// ends by itself: if lnd goes away the stream is opened again with
// backoff, for as long as ctx lives.
func (c *Client) SubscribePeerEvents(ctx context.Context) (
	*Subscription[PeerEvent], error) {

	const op = "SubscribePeerEvents"
	return startStream[PeerEvent](c, ctx, op, &peerStream{c: c, online: map[route.Vertex]bool{}})
}

// peerStream is one peer event subscription and its current gRPC stream.
type peerStream struct {
	c *Client

	stream      lnrpc.Lightning_SubscribePeerEventsClient
	closeStream context.CancelFunc

	// connected are the peers listed right after opening the stream.
	connected []route.Vertex

	// online are the peers last delivered online.
	online map[route.Vertex]bool
}

// open subscribes, then lists the connected peers, so no change between
// the two is lost.
func (s *peerStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.lightning(streamCtx)
	stream, err := cl.SubscribePeerEvents(
		streamCtx, &lnrpc.PeerEventSubscription{},
	)
	if err != nil {
		cancel()
		return err
	}

	listCtx, listCancel := context.WithTimeout(ctx, s.c.cfg.RPCTimeout)
	defer listCancel()
	listCtx, lcl := s.c.lightning(listCtx)
	resp, err := lcl.ListPeers(listCtx, &lnrpc.ListPeersRequest{})
	if err != nil {
		cancel()
		return err
	}
	s.connected = s.connected[:0]
	for _, p := range resp.Peers {
		v, err := route.NewVertexFromStr(p.PubKey)
		if err != nil {
			cancel()
			return fmt.Errorf("ListPeers: peer key %q: %w", p.PubKey,
				err)
		}
		s.connected = append(s.connected, v)
	}
	s.stream, s.closeStream = stream, cancel

	return nil
}

// close ends the open stream, if any.
func (s *peerStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers the peers listed at open, then the stream's events, until
// ctx ends, reconnecting when the stream breaks.
func (s *peerStream) run(ctx context.Context,
	sub *Subscription[PeerEvent]) error {

	const op = "SubscribePeerEvents"
	failures := 0
	for {
		if !s.deliverListed(ctx, sub) {
			return mapError(op, ctxErr(ctx))
		}

		for {
			ev, err := s.stream.Recv()
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
			peer, err := route.NewVertexFromStr(ev.PubKey)
			if err != nil {
				s.c.log.Warn("peer event with a bad peer key",
					"op", op, "err", err)
				continue
			}
			var online bool
			switch ev.Type {
			case lnrpc.PeerEvent_PEER_ONLINE:
				online = true
			case lnrpc.PeerEvent_PEER_OFFLINE:
			default:
				continue
			}
			if !s.deliver(ctx, sub, PeerEvent{Peer: peer, Online: online}) {
				return mapError(op, ctxErr(ctx))
			}
		}

		if err := s.c.reconnect(ctx, op, s.open, &failures); err != nil {
			return err
		}
		s.c.log.Info("lnd stream re-established", "op", op,
			"peers", len(s.connected))
	}
}

// deliverListed delivers the peers gone since they were delivered online
// as offline, then every peer listed at open as online. It reports false if
// ctx ended first.
func (s *peerStream) deliverListed(ctx context.Context,
	sub *Subscription[PeerEvent]) bool {

	listed := make(map[route.Vertex]bool, len(s.connected))
	for _, p := range s.connected {
		listed[p] = true
	}
	for p := range s.online {
		if !listed[p] && !s.deliver(ctx, sub, PeerEvent{Peer: p}) {
			return false
		}
	}
	for _, p := range s.connected {
		if !s.deliver(ctx, sub, PeerEvent{Peer: p, Online: true}) {
			return false
		}
	}

	return true
}

// deliver sends ev and records the peer's state.
func (s *peerStream) deliver(ctx context.Context, sub *Subscription[PeerEvent],
	ev PeerEvent) bool {

	if !sub.send(ctx, ev) {
		return false
	}
	if ev.Online {
		s.online[ev.Peer] = true
	} else {
		delete(s.online, ev.Peer)
	}

	return true
}

// ConnectedPeers returns the node keys of the peers connected now.
func (c *Client) ConnectedPeers(ctx context.Context) ([]route.Vertex, error) {
	var resp *lnrpc.ListPeersResponse
	err := c.do(ctx, "ListPeers", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.ListPeers(ctx, &lnrpc.ListPeersRequest{})

		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]route.Vertex, 0, len(resp.Peers))
	for _, p := range resp.Peers {
		v, err := route.NewVertexFromStr(p.PubKey)
		if err != nil {
			return nil, fmt.Errorf("lnd ListPeers: peer key %q: %w", p.PubKey, err)
		}
		out = append(out, v)
	}

	return out, nil
}
