package regtest

import (
	"context"
	"fmt"
	"slices"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// batchFeeReserve is what OpenChannels keeps in the wallet beyond the
// channels: the funding transaction's fee and lnd's anchor reserve.
const batchFeeReserve = 500_000

// OpenChannels opens count channels of sat each from from to to after
// Start, all in one funding transaction (lnd's BatchOpenChannel), so that
// many channels cost one confirmation instead of one each. It funds from's
// wallet further if it is short, and returns the channels' short ids, in
// lnd's order, once every one is active at both ends and, with both
// directions' policies, in the graph of every node that may route over it:
// every node for public channels, the two peers for private ones.
//
// to accepts at most its --maxpendingchannels (10 by default) pending
// channels from one peer: raise it with Options.LndArgs for more.
func (n *Network) OpenChannels(ctx context.Context, from, to *Node,
	count int, sat int64, private bool) ([]uint64, error) {

	if count < 1 || sat < MinChannelSat || sat > MaxChannelSat {
		return nil, fmt.Errorf("%w: %d channels of %d sat",
			ErrInvalidOptions, count, sat)
	}
	if err := n.EnsureFunds(ctx, from,
		int64(count)*sat+batchFeeReserve); err != nil {
		return nil, err
	}
	if err := from.connect(ctx, to); err != nil {
		return nil, err
	}
	from.link(to)

	req := &lnrpc.BatchOpenChannelRequest{SatPerVbyte: channelFeeRate}
	for range count {
		req.Channels = append(req.Channels, &lnrpc.BatchOpenChannel{
			NodePubkey:         to.PubKey[:],
			LocalFundingAmount: sat,
			Private:            private,
		})
	}
	resp, err := from.rpc().BatchOpenChannel(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("open %d channels %s -> %s: %w (is %s's "+
			"--maxpendingchannels at least %d?)", count, from.Name,
			to.Name, err, to.Name, count)
	}
	points := make([]string, 0, len(resp.PendingChannels))
	for _, p := range resp.PendingChannels {
		txid, err := chainhash.NewHash(p.Txid)
		if err != nil {
			return nil, fmt.Errorf("open %d channels %s -> %s: %w",
				count, from.Name, to.Name, err)
		}
		points = append(points, fmt.Sprintf("%s:%d", txid, p.OutputIndex))
	}
	if len(points) != count {
		return nil, fmt.Errorf("open %d channels %s -> %s: lnd opened %d",
			count, from.Name, to.Name, len(points))
	}
	if err := n.waitMempool(ctx, 1); err != nil {
		return nil, err
	}
	if err := n.Mine(ctx, announceConfs); err != nil {
		return nil, err
	}

	var ids []uint64
	for _, node := range []*Node{from, to} {
		if ids, err = node.waitActive(ctx, points); err != nil {
			return nil, err
		}
	}
	routers := n.Nodes()
	if private {
		routers = []*Node{from, to}
	}
	for _, node := range routers {
		for _, id := range ids {
			if err := node.waitEdge(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	n.log.Info("channels open", "from", from.Name, "to", to.Name,
		"count", count, "sat", sat, "private", private)

	return ids, nil
}

// waitActive waits until every channel in points (funding outpoints) is
// active at n, and returns their short ids in the same order.
func (n *Node) waitActive(ctx context.Context, points []string) ([]uint64,
	error) {

	ids := make([]uint64, len(points))
	err := poll(ctx, fmt.Sprintf("%d channels active at %s", len(points),
		n.Name), func(ctx context.Context) (bool, error) {

		chans, err := n.Client.ListChannels(ctx)
		if err != nil {
			return false, err
		}
		active := 0
		for i, p := range points {
			j := slices.IndexFunc(chans, func(c lnd.Channel) bool {
				return c.ChannelPoint == p
			})
			if j >= 0 && chans[j].Active {
				ids[i] = chans[j].ChanID
				active++
			}
		}
		if active < len(points) {
			return notYet("%d of %d active", active, len(points))
		}

		return true, nil
	})

	return ids, err
}

// link records that n and peer have a channel, so that each reconnects to
// the other when it starts again.
func (n *Node) link(peer *Node) {
	if !slices.Contains(n.peers, peer) {
		n.peers = append(n.peers, peer)
	}
	if !slices.Contains(peer.peers, n) {
		peer.peers = append(peer.peers, n)
	}
}
