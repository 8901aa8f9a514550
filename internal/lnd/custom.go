package lnd

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxCustomMessageSize is the largest payload of one custom message: a
// BOLT8 message is at most 65535 bytes, two of them the type.
const MaxCustomMessageSize = 65533

// CustomMessage is a message of a custom type that a connected peer sent
// to the node. lnd passes on the types from 32768 up (more with its
// protocol.custom-message option).
type CustomMessage struct {
	// Peer is the sending peer's node key, authenticated by BOLT8.
	Peer route.Vertex

	// Type is the message type.
	Type uint32

	// Data is the payload.
	Data []byte
}

// SubscribeCustomMessages delivers the custom messages peers send the
// node: those of the given types, or all of them when no type is given
// (lnd's stream carries every custom message of every peer). It never ends
// by itself: if lnd goes away the stream is opened again with backoff, for
// as long as ctx lives.
//
// Messages are not snapshots: one that arrives while the stream is down is
// lost (on a restart lnd drops its peers anyway), and so may be one sent
// the moment the stream (re)opens, before lnd has registered it. Use it
// for requests the peer repeats when unanswered, as LSPS0 clients do
// (50:512-515).
func (c *Client) SubscribeCustomMessages(ctx context.Context,
	types ...uint32) (*Subscription[CustomMessage], error) {

	const op = "SubscribeCustomMessages"
	return startStream[CustomMessage](c, ctx, op, &customStream{c: c, types: slices.Clone(types)})
}

// customStream is one custom message subscription and its current gRPC
// stream.
type customStream struct {
	c     *Client
	types []uint32

	stream      lnrpc.Lightning_SubscribeCustomMessagesClient
	closeStream context.CancelFunc
}

func (s *customStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.lightning(streamCtx)
	stream, err := cl.SubscribeCustomMessages(
		streamCtx, &lnrpc.SubscribeCustomMessagesRequest{},
	)
	if err != nil {
		cancel()
		return err
	}
	s.stream, s.closeStream = stream, cancel

	return nil
}

// close ends the open stream, if any.
func (s *customStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers the messages of the wanted types until ctx ends,
// reconnecting when the stream breaks.
func (s *customStream) run(ctx context.Context,
	sub *Subscription[CustomMessage]) error {

	const op = "SubscribeCustomMessages"
	failures := 0
	for {
		for {
			msg, err := s.stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return mapError(op, ctxErr(ctx))
				}
				if !isTransient(err) && !isStreamShutdown(err) {
					return mapError(op, err)
				}
				s.c.streamLost(s.c.log, op, failures, err)

				break
			}
			failures = 0
			if len(s.types) > 0 && !slices.Contains(s.types, msg.Type) {
				continue
			}
			peer, err := route.NewVertexFromBytes(msg.Peer)
			if err != nil {
				s.c.log.Warn("custom message with a bad peer key",
					"op", op, "type", msg.Type, "err", err)
				continue
			}
			m := CustomMessage{Peer: peer, Type: msg.Type, Data: msg.Data}
			if !sub.send(ctx, m) {
				return mapError(op, ctxErr(ctx))
			}
		}

		if err := s.c.reconnect(ctx, op, s.open, &failures); err != nil {
			return err
		}
		s.c.log.Info("lnd stream re-established", "op", op)
	}
}

// isStreamShutdown reports lnd's end of a stream it closes as it shuts
// down: SubscribeCustomMessages returns a bare "shutdown" (code Unknown).
func isStreamShutdown(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unknown && st.Message() == "shutdown"
}

// SendCustomMessage sends data to peer in one message of type msgType
// (lnd takes the types from 32768 up). It fails with ErrPeerNotConnected
// if the peer is not connected, and with ErrInvalidRequest for data over
// MaxCustomMessageSize.
//
// Unlike the other calls it is tried once, not repeated while lnd is
// away: lnd may have sent a message whose call failed, a peer may take a
// message repeated for a new one, and a peer's connection does not outlive
// lnd's restart anyway.
func (c *Client) SendCustomMessage(ctx context.Context, peer route.Vertex,
	msgType uint32, data []byte) error {

	const op = "SendCustomMessage"
	if len(data) > MaxCustomMessageSize {
		return fmt.Errorf("lnd %s: %w: %d bytes, the most is %d", op,
			ErrInvalidRequest, len(data), MaxCustomMessageSize)
	}

	ctx, cancel := c.scope(ctx)
	defer cancel()
	callCtx, cancelCall := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancelCall()
	callCtx, cl := c.lightning(callCtx)
	c.cfg.Metrics.begin()
	_, err := cl.SendCustomMessage(callCtx, &lnrpc.SendCustomMessageRequest{
		Peer: peer[:], Type: msgType, Data: data,
	})
	c.cfg.Metrics.end()
	switch {
	case err == nil:
		return nil

	case ctx.Err() != nil:
		return mapError(op, ctxErr(ctx))

	case peerGone(err):
		return fmt.Errorf("lnd %s: %w: %w", op, ErrPeerNotConnected,
			err)
	}

	return mapError(op, err)
}

// peerGone reports lnd's errors for a peer that is not connected: NotFound
// ("peer is not connected"), or the peer disconnecting while lnd waited
// for it to be active ("peer <key> disconnected").
func peerGone(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}

	return st.Code() == codes.NotFound ||
		strings.Contains(st.Message(), "peer is not connected") ||
		(strings.HasPrefix(st.Message(), "peer ") &&
			strings.HasSuffix(st.Message(), " disconnected"))
}
