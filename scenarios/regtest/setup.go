package regtest

import (
	"context"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/btcsuite/btcd/wire"
	"github.com/lightningnetwork/lnd/lnrpc"
	"golang.org/x/sync/errgroup"
)

// Funding of each lnd wallet: fundOutputs outputs of fundOutputSat, so a
// node can open a channel and still have a confirmed coin left.
const (
	fundOutputs   = 2
	fundOutputSat = 50_000_000
)

// announceConfs is how deep a public channel must be before lnd announces
// it (fixed by the protocol, whatever --bitcoin.defaultchanconfs says).
const announceConfs = 6

// channelFeeRate is the fee rate of the funding transactions, sat/vB.
const channelFeeRate = 5

// setup funds the nodes, connects them, opens the channels, confirms them
// and waits until every channel is active and known where it must be.
func (n *Network) setup(ctx context.Context) error {
	step := time.Now()
	if err := n.fund(ctx); err != nil {
		return err
	}
	n.log.Info("wallets funded", "took", since(step))

	step = time.Now()
	links := []struct {
		from, to  *Node
		sat, push int64
		private   bool
		chanID    *uint64
	}{
		{from: n.Alice, to: n.Bob, sat: n.opts.AliceBobSat,
			chanID: &n.AliceBobChan},
		{from: n.Bob, to: n.Carol, sat: n.opts.BobCarolSat,
			chanID: &n.BobCarolChan},
		{from: n.Carol, to: n.Dave, sat: n.opts.CarolDaveSat,
			push: n.opts.CarolDavePushSat, private: true,
			chanID: &n.CarolDaveChan},
	}
	for _, l := range links {
		if err := l.from.connect(ctx, l.to); err != nil {
			return err
		}
		l.from.peers = append(l.from.peers, l.to)
		l.to.peers = append(l.to.peers, l.from)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, l := range links {
		g.Go(func() error {
			return l.from.openChannel(
				gctx, l.to, l.sat, l.push, l.private,
			)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := n.waitMempool(ctx, len(links)); err != nil {
		return err
	}
	if err := n.Mine(ctx, announceConfs); err != nil {
		return err
	}
	n.log.Info("channels opened and confirmed", "took", since(step))

	step = time.Now()
	for _, l := range links {
		ch, err := l.from.WaitChannel(ctx, l.to, "active",
			func(c lnd.Channel) bool { return c.Active })
		if err != nil {
			return err
		}
		*l.chanID = ch.ChanID
	}
	for _, node := range n.Nodes() {
		if err := node.WaitChannelsActive(ctx); err != nil {
			return err
		}
	}
	if err := n.waitGraph(ctx); err != nil {
		return err
	}
	n.log.Info("graph complete", "took", since(step))

	return nil
}

// fund sends every node's wallet fundOutputs coins in one transaction,
// confirms it and waits until the wallets see it.
func (n *Network) fund(ctx context.Context) error {
	cs := make([]coins, 0, len(nodeNames))
	for _, node := range n.Nodes() {
		cs = append(cs, coins{node: node, outputs: fundOutputs,
			sat: fundOutputSat})
	}

	return n.sendCoins(ctx, cs)
}

// EnsureFunds makes sure node's wallet has at least sat confirmed: if it
// has less, the harness sends it the rest (and a coin for fees) and returns
// once the wallet sees it confirmed. A batch of channels (OpenChannels) may
// need more than the wallets get at Start.
func (n *Network) EnsureFunds(ctx context.Context, node *Node, sat int64) error {
	have, err := node.confirmedBalance(ctx)
	if err != nil {
		return err
	}
	if have >= sat {
		return nil
	}
	n.log.Info("funding a wallet further", "node", node.Name, "has", have,
		"wants", sat)

	return n.sendCoins(ctx, []coins{{node: node, outputs: 1,
		sat: sat - have + fundingFee}})
}

// coins are outputs of sat each for a node's wallet.
type coins struct {
	node    *Node
	outputs int
	sat     int64
}

// sendCoins pays every node its coins in one transaction, confirms it and
// waits until each wallet sees them confirmed.
func (n *Network) sendCoins(ctx context.Context, cs []coins) error {
	var outputs []*wire.TxOut
	want := map[*Node]int64{}
	for _, c := range cs {
		have, err := c.node.confirmedBalance(ctx)
		if err != nil {
			return fmt.Errorf("fund %s: %w", c.node.Name, err)
		}
		if _, ok := want[c.node]; !ok {
			want[c.node] = have
		}
		for range c.outputs {
			resp, err := c.node.rpc().NewAddress(
				ctx, &lnrpc.NewAddressRequest{
					Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH,
				},
			)
			if err != nil {
				return fmt.Errorf("fund %s: %w", c.node.Name, err)
			}
			out, err := n.btcd.payTo(resp.Address, c.sat)
			if err != nil {
				return fmt.Errorf("fund %s: %w", c.node.Name, err)
			}
			outputs = append(outputs, out)
			want[c.node] += c.sat
		}
	}
	if _, err := n.btcd.send(outputs); err != nil {
		return err
	}
	if err := n.waitMempool(ctx, 1); err != nil {
		return err
	}
	if err := n.Mine(ctx, 1); err != nil {
		return err
	}

	for _, c := range cs {
		node := c.node
		err := poll(ctx, node.Name+"'s funds", func(ctx context.Context) (
			bool, error) {

			have, err := node.confirmedBalance(ctx)
			if err != nil {
				return false, err
			}
			if have < want[node] {
				return notYet("confirmed %d of %d sat", have,
					want[node])
			}

			return true, nil
		})
		if err != nil {
			return err
		}
	}

	return nil
}

// confirmedBalance returns the confirmed balance of n's wallet, in sat.
func (n *Node) confirmedBalance(ctx context.Context) (int64, error) {
	b, err := n.rpc().WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
	if err != nil {
		return 0, err
	}

	return b.ConfirmedBalance, nil
}

// waitMempool waits until btcd's mempool holds at least count
// transactions.
func (n *Network) waitMempool(ctx context.Context, count int) error {
	return poll(ctx, "transactions in the mempool", func(context.Context) (
		bool, error) {

		txs, err := n.btcd.rpc.GetRawMempool()
		if err != nil {
			return false, err
		}
		if len(txs) < count {
			return notYet("%d of %d", len(txs), count)
		}

		return true, nil
	})
}

// waitGraph waits until every node knows, with both directions' policies,
// each channel it may route over: the public ones everywhere, the private
// one at carol and dave.
func (n *Network) waitGraph(ctx context.Context) error {
	public := []uint64{n.AliceBobChan, n.BobCarolChan}
	for _, node := range n.Nodes() {
		want := public
		if node == n.Carol || node == n.Dave {
			want = append([]uint64{n.CarolDaveChan}, public...)
		}
		err := poll(ctx, node.Name+"'s graph", func(ctx context.Context) (
			bool, error) {

			graph, err := node.rpc().DescribeGraph(
				ctx, &lnrpc.ChannelGraphRequest{
					IncludeUnannounced: true,
				},
			)
			if err != nil {
				return false, err
			}
			known := make(map[uint64]bool, len(graph.Edges))
			for _, e := range graph.Edges {
				if e.Node1Policy != nil && e.Node2Policy != nil {
					known[e.ChannelId] = true
				}
			}
			for _, id := range want {
				if !known[id] {
					return notYet("channel %d missing or "+
						"without both policies", id)
				}
			}

			return true, nil
		})
		if err != nil {
			return err
		}
	}

	return nil
}

// connect connects n to peer, if not connected yet.
func (n *Node) connect(ctx context.Context, peer *Node) error {
	return poll(ctx, n.Name+" connected to "+peer.Name, func(
		ctx context.Context) (bool, error) {

		peers, err := n.rpc().ListPeers(ctx, &lnrpc.ListPeersRequest{})
		if err != nil {
			return false, err
		}
		for _, p := range peers.Peers {
			if p.PubKey == peer.PubKey.String() {
				return true, nil
			}
		}
		_, err = n.rpc().ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
			Addr: &lnrpc.LightningAddress{
				Pubkey: peer.PubKey.String(),
				Host:   peer.P2PAddr(),
			},
			Timeout: 10,
		})

		// The next round checks the peer list again.
		return false, err
	})
}

// openChannel opens a channel from n to peer and returns once the funding
// transaction is published.
func (n *Node) openChannel(ctx context.Context, peer *Node, sat, push int64,
	private bool) error {

	_, err := n.rpc().OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
		NodePubkey:         peer.PubKey[:],
		LocalFundingAmount: sat,
		PushSat:            push,
		Private:            private,
		SatPerVbyte:        channelFeeRate,
	})
	if err != nil {
		return fmt.Errorf("open channel %s -> %s: %w", n.Name,
			peer.Name, err)
	}
	n.log.Info("channel funding published", "peer", peer.Name, "sat", sat,
		"push", push, "private", private)

	return nil
}

// since returns the time since t, rounded for logs.
func since(t time.Time) time.Duration {
	return time.Since(t).Round(time.Millisecond)
}
