package scenarios

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// Balances are nodes' local channel balances, in msat, by node name: what
// each could spend over all its channels, HTLCs in flight not included.
type Balances map[string]int64

// Balances reads the local channel balance of each of nodes (every node of
// the network if none is given). Each must be running.
func (c *Cast) Balances(ctx context.Context, nodes ...*regtest.Node) (Balances, error) {
	if len(nodes) == 0 {
		nodes = c.Net.Nodes()
	}
	b := Balances{}
	for _, n := range nodes {
		cb, err := n.Client.ChannelBalance(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s's balance: %w", n.Name, err)
		}
		b[n.Name] = int64(cb.LocalMsat)
	}

	return b, nil
}

// BalancesWithFees reads, for each of nodes (every node if none is given),
// its local channel balance plus the commitment fees it pays on the
// channels it opened. Unlike the local balance alone, that does not move
// when lnd updates a commitment's fee rate (update_fee, 10 to 60 minutes
// after a channel comes up, and again): a run that long must compare these
// (Run.CommitFees). Read with no HTLC in flight: each one's output adds to
// the fee too.
func (c *Cast) BalancesWithFees(ctx context.Context, nodes ...*regtest.Node) (Balances, error) {
	if len(nodes) == 0 {
		nodes = c.Net.Nodes()
	}
	b, err := c.Balances(ctx, nodes...)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		fees, err := n.CommitFeesMsat(ctx)
		if err != nil {
			return nil, err
		}
		b[n.Name] += fees
	}

	return b, nil
}

// Minus returns b - before for the nodes in both.
func (b Balances) Minus(before Balances) Balances {
	d := Balances{}
	for name, v := range b {
		if w, ok := before[name]; ok {
			d[name] = v - w
		}
	}

	return d
}

// Equal reports whether b and o hold the same nodes and amounts.
func (b Balances) Equal(o Balances) bool {
	if len(b) != len(o) {
		return false
	}
	for name, v := range b {
		if w, ok := o[name]; !ok || v != w {
			return false
		}
	}

	return true
}

// String lists the balances in payment order, in msat.
func (b Balances) String() string {
	names := make([]string, 0, len(b))
	for name := range b {
		names = append(names, name)
	}
	order := map[string]int{regtest.Alice: 0, regtest.Bob: 1,
		regtest.Carol: 2, regtest.Dave: 3}
	sort.Slice(names, func(i, j int) bool {
		return order[names[i]] < order[names[j]]
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %+d", name, b[name])
	}

	return strings.Join(parts, ", ")
}

// Settled is how one settled async payment moves money: alice pays the
// amount and bob's fee; bob keeps his fee less the routing fee he paid
// carol; dave gets the amount. Nothing else moves.
func Settled(amount, lspFee, routingFee int64) Balances {
	return Balances{
		regtest.Alice: -(amount + lspFee),
		regtest.Bob:   lspFee - routingFee,
		regtest.Carol: routingFee,
		regtest.Dave:  amount,
	}
}
