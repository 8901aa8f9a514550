package senderlsp

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// checkCapacity refuses a payment the LSP could not forward once released:
// too little outbound liquidity toward the receiver LSP after what pending
// holds may need (times CapacityOvercommit), or too few free HTLC slots.
//
// What a held payment reserves: its amount of outbound liquidity, as long
// as it is not final. Not an outbound HTLC slot: a hold takes one only from
// its release to its settle, and reserving one per hold would cap the LSP at
// 483 holds per outbound channel. A create needs MinFreeHTLCSlots free now.
//
// Its cost does not grow with the holds: the pending total is one row kept
// by the store's triggers, and lnd's channels (whose HTLCs include every
// held one) are read at most once per CapacityRefresh.
func (m *Manager) checkCapacity(ctx context.Context, req *PaymentRequest) error {
	chans, err := m.channels.get(ctx)
	if err != nil {
		return fmt.Errorf("list channels: %w", err)
	}
	pending, err := m.store.PendingTotals(ctx)
	if err != nil {
		return err
	}
	// Channels with the receiver LSP if there are any, else every active
	// channel (the payment may route through others). One pass, nothing
	// copied: the view is shared.
	var (
		direct, all capacity
		fromSender  int
		receiverLSP = route.Vertex(req.ReceiverLSP)
		sender      route.Vertex
		haveSender  = req.SenderNode != nil
	)
	if haveSender {
		sender = route.Vertex(*req.SenderNode)
	}
	for i := range chans {
		c := &chans[i]
		if !c.Active {
			continue
		}
		all.add(c)
		if c.RemotePubKey == receiverLSP {
			direct.add(c)
		}
		if haveSender && c.RemotePubKey == sender {
			fromSender += c.FreeIncomingSlots()
		}
	}
	out := all
	if direct.channels > 0 {
		out = direct
	}
	local, slots := out.local, out.slots
	need := req.AmountMsat + m.cfg.RoutingFeeLimit(req.AmountMsat)
	limit := overcommitted(local, m.cfg.CapacityOvercommit)
	if local > 0 {
		m.metrics.overcommit(float64(pending.AmountMsat) / float64(local))
	}
	if limit < pending.AmountMsat+need {
		return fmt.Errorf("%w: %d msat outbound (x%g: %d msat), %d msat "+
			"pending in %d holds, %d msat needed", ErrInsufficientLiquidity,
			local, m.cfg.CapacityOvercommit, limit, pending.AmountMsat,
			pending.Count, need)
	}
	if slots < m.cfg.MinFreeHTLCSlots {
		return fmt.Errorf("%w: %d free outgoing slots", ErrNoHTLCSlots, slots)
	}
	if haveSender && fromSender < m.cfg.MinFreeHTLCSlots {
		return fmt.Errorf("%w: %d free incoming slots from the sender",
			ErrNoHTLCSlots, fromSender)
	}
	return nil
}

// capacity sums what a set of channels can carry out.
type capacity struct {
	channels int
	local    lnwire.MilliSatoshi
	slots    int
}

func (c *capacity) add(ch *lnd.Channel) {
	c.channels++
	c.local += lnwire.MilliSatoshi(ch.LocalBalance) * 1000
	c.slots += ch.FreeOutgoingSlots()
}

// overcommitted is local times factor, in whole parts per million and
// exact: a factor of 1 gives local itself, the rule before overcommit.
func overcommitted(local lnwire.MilliSatoshi, factor float64) lnwire.MilliSatoshi {
	const million = 1_000_000
	ppm := uint64(math.Round(factor * million))
	hi, lo := bits.Mul64(uint64(local), ppm)
	if hi >= million {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, million)
	return lnwire.MilliSatoshi(q)
}

// channelView is lnd's channels as the capacity checks see them. One
// ListChannels serves every check for refresh after it started, and every
// check that arrives while it is in flight (single flight): lnd copies each
// HTLC of the node into the answer, the held ones included, so at 10,000
// held payments that is the O(N) work a create must not do each time. The
// age is read on the injected clock.
type channelView struct {
	list    func(context.Context) ([]lnd.Channel, error)
	clock   clock.Clock
	refresh time.Duration

	mu     sync.Mutex
	chans  []lnd.Channel // shared: read only
	at     time.Time     // when the call that returned chans started
	have   bool
	flight *viewCall
}

// viewCall is one ListChannels in flight; done is closed once it has
// returned.
type viewCall struct {
	done  chan struct{}
	chans []lnd.Channel
	err   error
	// abandoned: the caller that made it left (its context ended), so its
	// error says nothing about lnd.
	abandoned bool
}

func newChannelView(list func(context.Context) ([]lnd.Channel, error),
	clk clock.Clock, refresh time.Duration) *channelView {

	return &channelView{list: list, clock: clk, refresh: refresh}
}

// get returns the channels, read from lnd at most refresh ago. The slice is
// shared with other callers: it must not be changed.
func (v *channelView) get(ctx context.Context) ([]lnd.Channel, error) {
	if v.refresh <= 0 {
		return v.list(ctx)
	}
	for {
		v.mu.Lock()
		now := v.clock.Now()
		if v.have && now.Sub(v.at) < v.refresh {
			chans := v.chans
			v.mu.Unlock()
			return chans, nil
		}
		if c := v.flight; c != nil {
			v.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if c.abandoned {
				continue // ask again, as this caller is still here
			}
			return c.chans, c.err
		}
		c := &viewCall{done: make(chan struct{})}
		v.flight = c
		v.mu.Unlock()

		c.chans, c.err = v.list(ctx)
		c.abandoned = c.err != nil && ctx.Err() != nil
		v.mu.Lock()
		v.flight = nil
		if c.err == nil {
			v.chans, v.at, v.have = c.chans, now, true
		}
		v.mu.Unlock()
		close(c.done)
		return c.chans, c.err
	}
}
