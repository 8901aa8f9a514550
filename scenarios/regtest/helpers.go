package regtest

import (
	"context"
	"fmt"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
)

// WaitSynced waits until lnd is synced to the chain at height or above.
func (n *Node) WaitSynced(ctx context.Context, height uint32) error {
	return poll(ctx, n.Name+" synced to "+fmt.Sprint(height), func(
		ctx context.Context) (bool, error) {

		if !n.Running() {
			return false, n.exited()
		}
		info, err := n.Client.NodeInfo(ctx)
		switch {
		case err != nil:
			return false, err
		case info.BlockHeight < height:
			return notYet("at height %d", info.BlockHeight)
		case !info.SyncedToChain:
			return notYet("not synced to chain")
		}

		return true, nil
	})
}

// Channel returns n's channel with peer.
func (n *Node) Channel(ctx context.Context, peer *Node) (lnd.Channel, error) {
	chans, err := n.Client.ListChannels(ctx)
	if err != nil {
		return lnd.Channel{}, err
	}
	for _, c := range chans {
		if c.RemotePubKey == peer.PubKey {
			return c, nil
		}
	}

	return lnd.Channel{}, fmt.Errorf("%s has no channel with %s", n.Name,
		peer.Name)
}

// WaitChannel waits until n's channel with peer satisfies cond, described
// by what in the timeout error, and returns it.
func (n *Node) WaitChannel(ctx context.Context, peer *Node, what string,
	cond func(lnd.Channel) bool) (lnd.Channel, error) {

	var ch lnd.Channel
	err := poll(ctx, fmt.Sprintf("%s's channel with %s %s", n.Name,
		peer.Name, what), func(ctx context.Context) (bool, error) {

		var err error
		ch, err = n.Channel(ctx, peer)
		if err != nil {
			return false, err
		}

		return cond(ch), nil
	})

	return ch, err
}

// WaitChannelsActive waits until n's channels with all its peers in the
// network are active.
func (n *Node) WaitChannelsActive(ctx context.Context) error {
	for _, p := range n.peers {
		if !p.Running() {
			continue
		}
		_, err := n.WaitChannel(ctx, p, "active",
			func(c lnd.Channel) bool { return c.Active })
		if err != nil {
			return err
		}
	}

	return nil
}

// WaitNoPendingHTLCs waits until no channel of n has an HTLC in flight.
func (n *Node) WaitNoPendingHTLCs(ctx context.Context) error {
	return poll(ctx, n.Name+" without pending HTLCs", func(
		ctx context.Context) (bool, error) {

		chans, err := n.Client.ListChannels(ctx)
		if err != nil {
			return false, err
		}
		for _, c := range chans {
			if c.PendingHTLCs() > 0 {
				return notYet("channel %d has %d pending HTLCs",
					c.ChanID, c.PendingHTLCs())
			}
		}

		return true, nil
	})
}

// WaitBalance waits until n's channel balance satisfies cond, described by
// what in the timeout error, and returns it.
func (n *Node) WaitBalance(ctx context.Context, what string,
	cond func(lnd.ChannelBalance) bool) (lnd.ChannelBalance, error) {

	var b lnd.ChannelBalance
	err := poll(ctx, n.Name+"'s balance "+what, func(ctx context.Context) (
		bool, error) {

		var err error
		b, err = n.Client.ChannelBalance(ctx)
		if err != nil {
			return false, err
		}

		return cond(b), nil
	})

	return b, err
}

// WaitNoPendingHTLCs waits until no running node has an HTLC in flight.
func (n *Network) WaitNoPendingHTLCs(ctx context.Context) error {
	for _, node := range n.Nodes() {
		if !node.Running() {
			continue
		}
		if err := node.WaitNoPendingHTLCs(ctx); err != nil {
			return err
		}
	}

	return nil
}

// TrackPayments follows every payment of n's lnd (routerrpc's
// TrackPayments): it calls fn with the current state of each payment in
// flight when it starts, then with every update of any payment, until ctx
// ends or the stream fails, and returns why it ended.
func (n *Node) TrackPayments(ctx context.Context,
	fn func(*lnrpc.Payment)) error {

	n.mu.Lock()
	router := routerrpc.NewRouterClient(n.opsConn)
	n.mu.Unlock()

	stream, err := router.TrackPayments(ctx, &routerrpc.TrackPaymentsRequest{})
	if err != nil {
		return fmt.Errorf("%s: track payments: %w", n.Name, err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("%s: track payments: %w", n.Name, err)
		}
		fn(p)
	}
}

// CommitFeesMsat returns what n pays, on the open channels it opened, for
// the commitment itself: lnd's commit_fee, and the anchor outputs (330 sat
// each). The initiator pays both out of its balance; lnd moves the fee with
// the fee rate (update_fee), and an anchor appears the moment its side
// first has an output (the first payment into a channel opened without a
// push). The anchors are what is left of the capacity once the balances,
// the fee and the HTLCs in flight are counted.
func (n *Node) CommitFeesMsat(ctx context.Context) (int64, error) {
	fees, _, err := n.CommitFees(ctx)
	return fees, err
}

// CommitFees is CommitFeesMsat, and how many open channels n opened. lnd's
// commit_fee is the capacity less the commitment's outputs: it also holds
// the fractions of a satoshi both sides' balances have (a commitment output
// is whole satoshis), under 2 sat a channel, which move with every payment.
func (n *Node) CommitFees(ctx context.Context) (feesMsat int64, opened int, err error) {
	resp, err := n.rpc().ListChannels(ctx, &lnrpc.ListChannelsRequest{})
	if err != nil {
		return 0, 0, fmt.Errorf("%s: list channels: %w", n.Name, err)
	}
	for _, c := range resp.Channels {
		if c.Initiator {
			feesMsat += (c.CommitFee + anchorsSat(c)) * 1000
			opened++
		}
	}

	return feesMsat, opened, nil
}

// anchorSat is the value of one anchor output.
const anchorSat = 330

// anchorsSat is what a channel's anchor outputs hold, in sat: 0 on a
// channel without anchors. The balances lnd lists are whole satoshis, so
// what is left over also holds their lost millisatoshis: it is rounded to
// whole anchors.
func anchorsSat(c *lnrpc.Channel) int64 {
	rest := c.Capacity - c.LocalBalance - c.RemoteBalance - c.CommitFee
	for _, h := range c.PendingHtlcs {
		rest -= h.Amount
	}

	return max(0, (rest+anchorSat/2)/anchorSat) * anchorSat
}

// ForgetFailures resets n's mission control: lnd forgets every payment
// failure it learnt from, which it would otherwise hold against a channel
// for about an hour (the default apriori half-life).
func (n *Node) ForgetFailures(ctx context.Context) error {
	n.mu.Lock()
	router := routerrpc.NewRouterClient(n.opsConn)
	n.mu.Unlock()
	if _, err := router.ResetMissionControl(ctx,
		&routerrpc.ResetMissionControlRequest{}); err != nil {
		return fmt.Errorf("%s: reset mission control: %w", n.Name, err)
	}

	return nil
}
