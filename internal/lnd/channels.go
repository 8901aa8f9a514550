package lnd

import (
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// ListChannels returns the node's open channels, active or not.
func (c *Client) ListChannels(ctx context.Context) ([]Channel, error) {
	var resp *lnrpc.ListChannelsResponse
	err := c.do(ctx, "ListChannels", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.ListChannels(ctx, &lnrpc.ListChannelsRequest{})

		return err
	})
	if err != nil {
		return nil, err
	}

	out := make([]Channel, 0, len(resp.Channels))
	for _, ch := range resp.Channels {
		c, err := channelFromRPC(ch)
		if err != nil {
			return nil, fmt.Errorf("lnd ListChannels: %w", err)
		}
		out = append(out, c)
	}

	return out, nil
}

// ChannelBalance returns the sums of the node's channel balances.
func (c *Client) ChannelBalance(ctx context.Context) (ChannelBalance, error) {
	var resp *lnrpc.ChannelBalanceResponse
	err := c.do(ctx, "ChannelBalance", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.ChannelBalance(
			ctx, &lnrpc.ChannelBalanceRequest{},
		)

		return err
	})
	if err != nil {
		return ChannelBalance{}, err
	}

	return ChannelBalance{
		LocalMsat:            msat(resp.LocalBalance),
		RemoteMsat:           msat(resp.RemoteBalance),
		UnsettledLocalMsat:   msat(resp.UnsettledLocalBalance),
		UnsettledRemoteMsat:  msat(resp.UnsettledRemoteBalance),
		PendingOpenLocalMsat: msat(resp.PendingOpenLocalBalance),
	}, nil
}

// msat reads an lnrpc amount; a missing one is zero.
func msat(a *lnrpc.Amount) lnwire.MilliSatoshi {
	if a == nil {
		return 0
	}

	return lnwire.MilliSatoshi(a.Msat)
}

// channelFromRPC converts one of lnd's channels.
func channelFromRPC(ch *lnrpc.Channel) (Channel, error) {
	remote, err := route.NewVertexFromStr(ch.RemotePubkey)
	if err != nil {
		return Channel{}, fmt.Errorf("channel %d: remote pubkey: %w",
			ch.ChanId, err)
	}
	out := Channel{
		ChanID:        ch.ChanId,
		ChannelPoint:  ch.ChannelPoint,
		RemotePubKey:  remote,
		Capacity:      ch.Capacity,
		LocalBalance:  ch.LocalBalance,
		RemoteBalance: ch.RemoteBalance,
		Active:        ch.Active,
		Private:       ch.Private,
	}
	for _, h := range ch.PendingHtlcs {
		if h.Incoming {
			out.IncomingHTLCs++
		} else {
			out.OutgoingHTLCs++
		}
		// lnd always sends the hash; a missing one stays zero rather
		// than hide the channel.
		var hash lntypes.Hash
		copy(hash[:], h.HashLock)
		out.HTLCs = append(out.HTLCs, ChannelHTLC{
			Incoming:     h.Incoming,
			Hash:         hash,
			AmountMsat:   lnwire.NewMSatFromSatoshis(btcutil.Amount(h.Amount)),
			ExpiryHeight: h.ExpirationHeight,
		})
	}

	// lnd checks the HTLCs we offer against the local constraints and
	// the HTLCs the peer offers against the remote ones
	// (lnwallet.validateCommitmentSanity).
	if ch.LocalConstraints != nil {
		out.MaxOutgoingHTLCs = ch.LocalConstraints.MaxAcceptedHtlcs
	}
	if ch.RemoteConstraints != nil {
		out.MaxIncomingHTLCs = ch.RemoteConstraints.MaxAcceptedHtlcs
	}

	return out, nil
}
