package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	"github.com/lightningnetwork/lnd/lnwire"
	"golang.org/x/sync/errgroup"
)

// Setup of a scale run, off the clock.
const (
	// invoicesInFlight is how many invoices dave's lnd makes at once.
	invoicesInFlight = 16

	// uploadBatch is how many invoices one upload to carol carries (her
	// receiver.maxupload).
	uploadBatch = 256

	// directTimeout is how long lnd tries routes for one direct payment.
	directTimeout = time.Minute

	// itemInterval is how often a mailbox item carol does not have yet
	// is asked for again.
	itemInterval = 200 * time.Millisecond
)

// setup opens the alice -> bob channels, stocks carol with dave's
// invoices and makes the baseline's invoices.
func (s *scaleRun) setup(ctx context.Context) error {
	net := s.c.Net
	start := time.Now()
	var err error
	s.chans, err = net.OpenChannels(ctx, net.Alice, net.Bob, s.cfg.Channels,
		s.cfg.ChannelSat, true)
	if err != nil {
		return err
	}
	s.r.ChannelsIn = time.Since(start)
	s.cfg.Progress("%d alice -> bob channels of %d sat open in %s",
		len(s.chans), s.cfg.ChannelSat, round(s.r.ChannelsIn))

	start = time.Now()
	stock, err := s.invoices(ctx, s.cfg.N, 0)
	if err != nil {
		return err
	}
	accepted := 0
	for i := 0; i < len(stock); i += uploadBatch {
		resp, err := s.c.Dave.Upload(ctx, stock[i:min(i+uploadBatch, len(stock))])
		if err != nil {
			return fmt.Errorf("dave uploads invoices: %w", err)
		}
		accepted += resp.Accepted
	}
	if accepted != len(stock) {
		return fmt.Errorf("%w: carol accepted %d of dave's %d invoices",
			ErrScale, accepted, len(stock))
	}
	if s.directInvoices, err = s.invoices(ctx, s.cfg.Direct, s.cfg.amount()); err != nil {
		return err
	}
	if s.heldInvoices, err = s.invoices(ctx, s.cfg.HeldDirect, s.cfg.amount()); err != nil {
		return err
	}
	s.r.InvoicesIn = time.Since(start)
	s.cfg.Progress("dave uploaded %d invoices to carol and made %d for direct "+
		"payments in %s", len(stock), len(s.directInvoices)+len(s.heldInvoices),
		round(s.r.InvoicesIn))

	return nil
}

// invoices has dave's lnd make n invoices of amount (0: amountless),
// invoicesInFlight at a time.
func (s *scaleRun) invoices(ctx context.Context, n int,
	amount lnwire.MilliSatoshi) ([]string, error) {

	out := make([]string, n)
	maker := InvoiceMaker{s.c.Net.Dave.Client}
	err := each(ctx, n, invoicesInFlight, func(ctx context.Context, i int) error {
		var err error
		out[i], err = maker.MakeInvoice(ctx, amount, InvoiceLife)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dave makes invoices: %w", err)
	}

	return out, nil
}

// direct measures lnd's own throughput over the route of the async
// payments: alice pays dave's invoices directly, alice -> bob (over the
// same channels, round robin) -> carol -> dave, cfg.Concurrency at a time.
// Then it notes the balances the ledger check starts from.
func (s *scaleRun) direct(ctx context.Context) error {
	var err error
	s.r.Direct, s.r.DirectCPU, err = s.payDirect(ctx, s.directInvoices)
	if err != nil {
		return err
	}
	if s.r.Direct.Count > 0 {
		s.cfg.Progress("direct baseline: %s", s.r.Direct)
	}
	if err := s.c.Net.WaitNoPendingHTLCs(ctx); err != nil {
		return err
	}
	// A run takes longer than lnd waits before it first updates a
	// commitment's fee rate: compare balances with the fees counted.
	s.before, err = s.c.BalancesWithFees(ctx)

	return err
}

// heldDirect measures lnd's throughput over the same route again, with the
// N held: each direct payment adds and settles an HTLC on an alice -> bob
// channel that carries its share of the N, as a release settles one. What
// the payments move is added to the balances the ledger check starts from
// (the held HTLCs stay put meanwhile).
func (s *scaleRun) heldDirect(ctx context.Context) error {
	if len(s.heldInvoices) == 0 {
		return nil
	}
	pre, err := s.c.BalancesWithFees(ctx)
	if err != nil {
		return err
	}
	s.r.HeldDirect, s.r.HeldDirectCPU, err = s.payDirect(ctx, s.heldInvoices)
	if err != nil {
		return err
	}
	s.cfg.Progress("direct with %d held: %s", s.cfg.N, s.r.HeldDirect)
	if err := s.waitHTLCs(ctx, s.cfg.N); err != nil {
		return err
	}
	post, err := s.c.BalancesWithFees(ctx)
	if err != nil {
		return err
	}
	for node, moved := range post.Minus(pre) {
		s.before[node] += moved
	}

	return nil
}

// waitHTLCs waits until the network's channels carry n HTLCs between
// alice and bob and none elsewhere: the direct payments' HTLCs are gone
// from every channel.
func (s *scaleRun) waitHTLCs(ctx context.Context, n int) error {
	net := s.c.Net
	ctx, cancel := context.WithTimeout(ctx, stallTimeout)
	defer cancel()

	return await.Until(ctx, "the direct payments' HTLCs to clear", itemInterval,
		func(ctx context.Context) (bool, error) {
			for _, node := range net.Nodes() {
				chans, err := node.Client.ListChannels(ctx)
				if err != nil {
					return false, err
				}
				htlcs := 0
				for _, c := range chans {
					htlcs += c.PendingHTLCs()
				}
				want := 0
				if node == net.Alice || node == net.Bob {
					want = n
				}
				if htlcs != want {
					return false, nil
				}
			}
			return true, nil
		}, func(error) bool { return false })
}

// payDirect has alice pay invoices directly, alice -> bob (over the
// same channels as the held HTLCs, round robin) -> carol -> dave,
// cfg.Concurrency at a time, and returns lnd's throughput.
func (s *scaleRun) payDirect(ctx context.Context, invoices []string) (Throughput, CPU, error) {
	alice := s.c.Net.Alice.Client
	start := time.Now()
	cpu := s.meterCPU()
	err := each(ctx, len(invoices), s.cfg.Concurrency, func(ctx context.Context, i int) error {
		amount := s.cfg.amount()
		sub, err := alice.SendPayment(ctx, lnd.SendPaymentRequest{
			Invoice:         invoices[i],
			FeeLimitMsat:    amount/100 + 10_000,
			Timeout:         directTimeout,
			OutgoingChanIDs: []uint64{s.chans[i%len(s.chans)]},
		})
		if err != nil {
			return fmt.Errorf("direct payment %d: %w", i, err)
		}
		pay := WatchPayment(sub, time.Now())
		defer pay.Close()
		done, _, err := pay.Wait(ctx)
		if err != nil {
			return fmt.Errorf("direct payment %d: %w", i, err)
		}
		if done.Status != lnd.PaymentSucceeded {
			return fmt.Errorf("%w: direct payment %d: %s (%s)", ErrScale,
				i, done.Status, done.FailureReason)
		}
		return nil
	})
	if err != nil || len(invoices) == 0 {
		return Throughput{}, CPU{}, err
	}

	return Throughput{Count: len(invoices), Took: time.Since(start)}, cpu.used(), nil
}

// each calls fn for 0 <= i < n, at most limit at a time, and returns the
// first error; the others are then canceled.
func each(ctx context.Context, n, limit int,
	fn func(ctx context.Context, i int) error) error {

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}

	return g.Wait()
}

// item reads dave's mailbox item for bob's payment id at carol, waiting
// for it while carol does not have it: bob tells her of a payment after it
// is HELD, and again after a restart.
func (s *scaleRun) item(ctx context.Context, id string) (*receiverclient.Item, error) {
	hold, err := onionmsg.ParseHoldID(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, stallTimeout)
	defer cancel()
	var it *receiverclient.Item
	err = await.Until(ctx, "dave's mailbox item "+id, itemInterval,
		func(ctx context.Context) (bool, error) {
			it, err = s.c.Dave.Item(ctx, s.c.Bob.NodeKey, hold, 0, 0)
			if receiverclient.IsCode(err, receiverclient.CodeNotFound) {
				return false, nil
			}
			return err == nil, err
		}, func(err error) bool { return !receiverclient.Retryable(err) })

	return it, err
}
