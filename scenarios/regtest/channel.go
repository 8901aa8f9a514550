package regtest

import (
	"context"
	"fmt"
	"slices"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
)

// OpenChannel opens one more channel from from to to after Start (a second
// channel between two peers lets a payment split over both), confirms it
// and returns its short channel id once it is active at both ends and, with
// both directions' policies, in the graph of every node that may route over
// it: every node for a public channel, the two peers for a private one.
func (n *Network) OpenChannel(ctx context.Context, from, to *Node, sat,
	push int64, private bool) (uint64, error) {

	if sat < MinChannelSat || sat > MaxChannelSat || push < 0 ||
		push >= sat {

		return 0, fmt.Errorf("%w: channel of %d sat pushing %d",
			ErrInvalidOptions, sat, push)
	}
	if err := from.connect(ctx, to); err != nil {
		return 0, err
	}
	point, err := from.rpc().OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
		NodePubkey:         to.PubKey[:],
		LocalFundingAmount: sat,
		PushSat:            push,
		Private:            private,
		SatPerVbyte:        channelFeeRate,
	})
	if err != nil {
		return 0, fmt.Errorf("open channel %s -> %s: %w", from.Name,
			to.Name, err)
	}
	txid, err := chainhash.NewHash(point.GetFundingTxidBytes())
	if err != nil {
		return 0, fmt.Errorf("open channel %s -> %s: %w", from.Name,
			to.Name, err)
	}
	chanPoint := fmt.Sprintf("%s:%d", txid, point.OutputIndex)
	if err := n.waitMempool(ctx, 1); err != nil {
		return 0, err
	}
	if err := n.Mine(ctx, announceConfs); err != nil {
		return 0, err
	}

	var id uint64
	for _, node := range []*Node{from, to} {
		err := poll(ctx, node.Name+"'s channel "+chanPoint+" active",
			func(ctx context.Context) (bool, error) {
				chans, err := node.Client.ListChannels(ctx)
				if err != nil {
					return false, err
				}
				i := slices.IndexFunc(chans, func(c lnd.Channel) bool {
					return c.ChannelPoint == chanPoint
				})
				if i < 0 || !chans[i].Active {
					return notYet("not active yet")
				}
				id = chans[i].ChanID

				return true, nil
			})
		if err != nil {
			return 0, err
		}
	}

	routers := n.Nodes()
	if private {
		routers = []*Node{from, to}
	}
	for _, node := range routers {
		if err := node.waitEdge(ctx, id); err != nil {
			return 0, err
		}
	}
	n.log.Info("extra channel open", "from", from.Name, "to", to.Name,
		"sat", sat, "push", push, "private", private, "chan_id", id)

	return id, nil
}

// waitEdge waits until n's graph has channel id with both policies.
func (n *Node) waitEdge(ctx context.Context, id uint64) error {
	return poll(ctx, fmt.Sprintf("channel %d in %s's graph", id, n.Name),
		func(ctx context.Context) (bool, error) {
			e, err := n.rpc().GetChanInfo(ctx,
				&lnrpc.ChanInfoRequest{ChanId: id})
			if err != nil {
				return false, err
			}
			if e.Node1Policy == nil || e.Node2Policy == nil {
				return notYet("without both policies")
			}

			return true, nil
		})
}
