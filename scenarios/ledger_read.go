package scenarios

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// DefaultSettle is how long Cast.Judge waits by default for what is in
// flight to end.
const DefaultSettle = time.Minute

// judgeInterval is how often Cast.Judge reads the ledgers again: each read
// lists every payment and invoice of every node.
const judgeInterval = 250 * time.Millisecond

// ReadLedgers reads the ledger of each of nodes (every node of the network
// if none is given) from its lnd. Each must be running.
func (c *Cast) ReadLedgers(ctx context.Context, nodes ...*regtest.Node) (Ledgers, error) {
	if len(nodes) == 0 {
		nodes = c.Net.Nodes()
	}
	out := Ledgers{}
	for _, n := range nodes {
		l, err := readLedger(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("%s's ledger: %w", n.Name, err)
		}
		out[n.Name] = l
	}

	return out, nil
}

// readLedger reads one node's records.
func readLedger(ctx context.Context, n *regtest.Node) (*Ledger, error) {
	cl := n.Client
	var (
		l   Ledger
		err error
	)
	if l.Payments, err = cl.ListPayments(ctx); err != nil {
		return nil, err
	}
	if l.Invoices, err = cl.ListInvoices(ctx); err != nil {
		return nil, err
	}
	if l.Channels, err = cl.ListChannels(ctx); err != nil {
		return nil, err
	}
	if l.Pending, err = cl.PendingChannels(ctx); err != nil {
		return nil, err
	}
	if l.Closed, err = cl.ClosedChannels(ctx); err != nil {
		return nil, err
	}
	bal, err := cl.ChannelBalance(ctx)
	if err != nil {
		return nil, err
	}
	l.BalanceMsat = int64(bal.LocalMsat)
	if l.Height, err = cl.CurrentHeight(ctx); err != nil {
		return nil, err
	}

	return &l, nil
}

// Run is what a run of payments gives the judge.
type Run struct {
	// Sent are the run's async payments (Cast.Sent).
	Sent []Sent

	// Before are the channel balances when the run began (nil: no
	// balance check).
	Before Balances

	// Settle is how long to wait for what is in flight to end before
	// judging it stuck; default DefaultSettle.
	Settle time.Duration

	// CommitFees: Before was read with BalancesWithFees, and the ledgers'
	// balances count the commitment fees too.
	CommitFees bool
}

// Judge reads every node's ledger and judges the run by it (Judge). While
// the report shows something in flight, it reads again, for up to
// run.Settle: a payment settling as the run ends is not stuck. Then it
// returns the report as it is; an error only if the ledgers could not be
// read.
func (c *Cast) Judge(ctx context.Context, run Run) (*Report, error) {
	if run.Settle == 0 {
		run.Settle = DefaultSettle
	}
	ctx, cancel := context.WithTimeout(ctx, run.Settle)
	defer cancel()
	var report *Report
	err := await.Until(ctx, "the run's payments to settle down", judgeInterval,
		func(ctx context.Context) (bool, error) {
			l, err := c.ReadLedgers(ctx)
			if err != nil {
				return false, err
			}
			if run.CommitFees {
				if err := c.addCommitFees(ctx, l); err != nil {
					return false, err
				}
			}
			report = Judge(run.Sent, run.Before, l)
			return report.Count(Stuck) == 0, nil
		}, func(error) bool { return false })
	if report == nil {
		return nil, err
	}

	return report, nil
}

// addCommitFees adds to each ledger's balance the commitment fees its node
// pays (BalancesWithFees).
func (c *Cast) addCommitFees(ctx context.Context, l Ledgers) error {
	for name, ledger := range l {
		fees, opened, err := c.Net.Node(name).CommitFees(ctx)
		if err != nil {
			return err
		}
		ledger.BalanceMsat += fees
		ledger.DustMsat = 2_000 * int64(opened)
	}

	return nil
}

// record notes a payment Create made, for the judge.
func (c *Cast) record(p *senderclient.Payment) error {
	hash, err := Hash(p)
	if err != nil {
		return err
	}
	c.sentMu.Lock()
	defer c.sentMu.Unlock()
	c.sent = append(c.sent, Sent{Hash: hash,
		AmountMsat: lnwire.MilliSatoshi(p.AmountMsat),
		FeeMsat:    lnwire.MilliSatoshi(p.FeeMsat)})

	return nil
}

// Sent returns the payments Create made so far, oldest first, each wanting
// either fate (set Want to expect one).
func (c *Cast) Sent() []Sent {
	c.sentMu.Lock()
	defer c.sentMu.Unlock()

	return slices.Clone(c.sent)
}

// Expect returns sent with every payment wanting fate.
func Expect(sent []Sent, fate Fate) []Sent {
	out := slices.Clone(sent)
	for i := range out {
		out[i].Want = fate
	}

	return out
}
