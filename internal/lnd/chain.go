package lnd

import (
	"context"
	"fmt"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/chainrpc"
	"github.com/lightningnetwork/lnd/routing/route"
)

// NodeInfo returns the node's identity, version, height and sync state.
func (c *Client) NodeInfo(ctx context.Context) (NodeInfo, error) {
	var resp *lnrpc.GetInfoResponse
	err := c.do(ctx, "GetInfo", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.GetInfo(ctx, &lnrpc.GetInfoRequest{})

		return err
	})
	if err != nil {
		return NodeInfo{}, err
	}
	pub, err := route.NewVertexFromStr(resp.IdentityPubkey)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("lnd GetInfo: pubkey: %w", err)
	}

	return NodeInfo{
		PubKey:         pub,
		Alias:          resp.Alias,
		Version:        resp.Version,
		BlockHeight:    resp.BlockHeight,
		SyncedToChain:  resp.SyncedToChain,
		SyncedToGraph:  resp.SyncedToGraph,
		ActiveChannels: resp.NumActiveChannels,
	}, nil
}

// CurrentHeight returns the height of lnd's best block.
func (c *Client) CurrentHeight(ctx context.Context) (uint32, error) {
	info, err := c.NodeInfo(ctx)
	if err != nil {
		return 0, err
	}

	return info.BlockHeight, nil
}

// SubscribeBlocks delivers the current block height, then each new one. It
// never ends by itself: after a reconnect it delivers lnd's current height
// if it changed, so a consumer that acts on "height >= h" misses
// nothing (heights in between may be skipped). A reorg may deliver a lower
// height.
func (c *Client) SubscribeBlocks(ctx context.Context) (*Subscription[uint32],
	error) {

	ctx, cancel := c.scope(ctx)
	s := &blockStream{c: c}
	if err := c.openStream(ctx, "SubscribeBlocks", s.open); err != nil {
		cancel()
		return nil, err
	}

	sub := newSubscription[uint32](cancel)
	err := c.goOwned(func() {
		defer s.close()
		sub.finish(s.run(ctx, sub))
	})
	if err != nil {
		s.close()
		cancel()

		return nil, mapError("SubscribeBlocks", err)
	}

	return sub, nil
}

// blockStream is one block subscription and its current gRPC stream.
type blockStream struct {
	c *Client

	stream      chainrpc.ChainNotifier_RegisterBlockEpochNtfnClient
	closeStream context.CancelFunc
	current     uint32

	last      uint32
	delivered bool
}

// open registers for block epochs and reads the first one: lnd sends its
// current tip at once, so a block mined while the stream was down is not
// missed.
func (s *blockStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.chainNotifier(streamCtx)
	stream, err := cl.RegisterBlockEpochNtfn(
		streamCtx, &chainrpc.BlockEpoch{},
	)
	var tip *chainrpc.BlockEpoch
	if err == nil {
		tip, err = stream.Recv()
	}
	if err != nil {
		cancel()
		return err
	}
	s.current = tip.Height
	s.stream, s.closeStream = stream, cancel

	return nil
}

// close ends the open stream, if any.
func (s *blockStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers heights until ctx ends, reconnecting when the stream breaks.
func (s *blockStream) run(ctx context.Context, sub *Subscription[uint32]) error {
	const op = "SubscribeBlocks"
	failures := 0
	for {
		if !s.deliver(ctx, sub, s.current) {
			return mapError(op, ctxErr(ctx))
		}

		for {
			epoch, err := s.stream.Recv()
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
			if !s.deliver(ctx, sub, epoch.Height) {
				return mapError(op, ctxErr(ctx))
			}
		}

		if err := s.c.reconnect(ctx, op, s.open, &failures); err != nil {
			return err
		}
		s.c.log.Info("lnd stream re-established", "op", op,
			"height", s.current)
	}
}

// deliver sends height unless it equals the last one sent. It reports
// false if ctx ended first.
func (s *blockStream) deliver(ctx context.Context, sub *Subscription[uint32],
	height uint32) bool {

	if s.delivered && height == s.last {
		return true
	}
	if !sub.send(ctx, height) {
		return false
	}
	s.last, s.delivered = height, true

	return true
}
