package senderlsp

import (
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnwire"
)

// Config is the sender role's policy. The daemon fills it from flags and its
// ini file; DefaultConfig is what one machine wants.
type Config struct {
	// FeeBaseMsat and FeePPM are what the LSP charges on top of the
	// amount: the hold invoice is for amount + base + amount*ppm/1e6.
	FeeBaseMsat lnwire.MilliSatoshi `long:"fee-base-msat" description:"Fixed fee charged per async payment, in msat"`
	FeePPM      uint32              `long:"fee-ppm" description:"Proportional fee charged per async payment, in parts per million"`

	// HoldCltvDelta is the final CLTV delta of the hold invoice: how many
	// blocks the sender's HTLC may be held. Payers cap it at their
	// --max-cltv-expiry (2016 by default, so at most 2012 here).
	HoldCltvDelta uint32 `long:"hold-cltv-delta" description:"Final CLTV delta of hold invoices, in blocks (how long a payment can be held)"`

	// HoldInvoiceExpiry is how long the sender has to pay the hold
	// invoice.
	HoldInvoiceExpiry time.Duration `long:"hold-invoice-expiry" description:"How long the sender has to pay a hold invoice"`

	// SafetyMarginBlocks: the outbound payment's CLTV limit ends at least
	// this many blocks before the incoming HTLC expires (invariant 4).
	SafetyMarginBlocks uint32 `long:"safety-margin-blocks" description:"Blocks between the end of the outbound payment's CLTV limit and the incoming HTLC's expiry"`

	// MinOutboundCltv is the smallest CLTV budget worth paying the
	// receiver with (its final delta plus the route's). A hold whose
	// budget has shrunk below it cannot be forwarded safely: its deadline
	// height is incoming expiry - SafetyMarginBlocks - MinOutboundCltv.
	MinOutboundCltv uint32 `long:"min-outbound-cltv" description:"Smallest CLTV budget, in blocks, an outbound payment is attempted with; sets the hold's deadline height"`

	// MaxHoldTime caps how long a payment may be held; a request may ask
	// for less.
	MaxHoldTime time.Duration `long:"max-hold-time" description:"Longest time a payment is held waiting for the receiver"`

	// MinInvoiceLife: a receiver invoice must stay valid at least this
	// long to be used for a new hold.
	MinInvoiceLife time.Duration `long:"min-invoice-life" description:"Shortest remaining validity of a receiver invoice accepted for a new hold"`

	// InvoiceExpiryMargin: a hold is canceled this long before its
	// receiver invoice expires, so an outbound attempt never races it.
	InvoiceExpiryMargin time.Duration `long:"invoice-expiry-margin" description:"Cancel a hold this long before its receiver invoice expires"`

	// MaxRoutingFeeBaseMsat and MaxRoutingFeePPM bound the routing fee
	// of the outbound payment.
	MaxRoutingFeeBaseMsat lnwire.MilliSatoshi `long:"max-routing-fee-base-msat" description:"Fixed part of the routing fee limit of outbound payments, in msat"`
	MaxRoutingFeePPM      uint32              `long:"max-routing-fee-ppm" description:"Proportional part of the routing fee limit of outbound payments"`

	// MaxParts caps how many HTLCs an outbound payment is split into.
	MaxParts uint32 `long:"max-parts" description:"Most parts an outbound payment is split into (MPP)"`

	// PaymentTimeout is how long lnd looks for routes per attempt.
	PaymentTimeout time.Duration `long:"payment-timeout" description:"How long lnd tries routes for one outbound attempt"`

	// QuickRetries are the waits before the first retries of a patient
	// payment; after them it retries every SlowRetryInterval while the
	// block budget allows.
	QuickRetries      []time.Duration `long:"quick-retry" description:"Wait before each quick retry of a patient payment (repeatable)"`
	SlowRetryInterval time.Duration   `long:"slow-retry-interval" description:"Wait between slow retries of a patient payment"`

	// MinFreeHTLCSlots: a new hold is refused when fewer HTLC slots are
	// free on the channels it would use.
	MinFreeHTLCSlots int `long:"min-free-htlc-slots" description:"Refuse new holds when fewer HTLC slots are free on the channels they need"`

	// CapacityOvercommit: a new hold is refused unless the amounts of
	// the holds not yet final, plus its own with its routing fee limit,
	// fit in this multiple of the outbound liquidity. 1 reserves the
	// liquidity for every held payment; above 1 bets that not all of
	// them are released at once.
	CapacityOvercommit float64 `long:"capacity-overcommit" description:"Admit new holds while pending holds plus the new one need at most this multiple of the outbound liquidity (1: fully reserved)"`

	// CapacityRefresh is how long one ListChannels of lnd serves the
	// capacity checks of new holds; 0 asks lnd at every create.
	CapacityRefresh time.Duration `long:"capacity-refresh" description:"How long one read of lnd's channels serves the capacity checks of new holds (0: read at every create)"`

	// ReleaseClockSkew is how far in the future a release may be dated.
	ReleaseClockSkew time.Duration `long:"release-clock-skew" description:"How far in the future a release's creation time may be"`

	// RequestTimeout bounds one invoice_request to a receiver LSP.
	RequestTimeout time.Duration `long:"request-timeout" description:"Timeout of an invoice request to a receiver LSP"`

	// DeadlineInterval is how often time-based deadlines are checked
	// (block deadlines are checked on every block).
	DeadlineInterval time.Duration `long:"deadline-interval" description:"How often time-based hold deadlines are checked"`

	// MaxForwarding caps the outbound payments in flight at once; releases
	// beyond it wait in RELEASED for a slot.
	MaxForwarding int `long:"max-forwarding" description:"Most outbound payments in flight at once; further releases wait for a slot (lnd carries at most 483 HTLCs per channel direction)"`

	// MaxInvoiceStreams caps the unpaid hold invoices followed on an lnd
	// stream each; the others are polled.
	MaxInvoiceStreams int `long:"max-invoice-streams" description:"Most unpaid hold invoices followed on an lnd stream each; beyond, they are polled (1s doubling to 30s)"`

	// ReconcileInterval is how often the held payments are compared with
	// lnd's pending invoices, besides after every (re)subscription to
	// lnd's HTLC events: what a lost event would have said.
	ReconcileInterval time.Duration `long:"reconcile-interval" description:"How often held payments are compared with lnd's pending invoices (also after every reconnect to lnd)"`

	// LingerInterval is how often lnd's channels are checked for incoming
	// HTLCs of payments asynclsp ended (lnd confirmed the cancel or
	// settle) that lnd still has, LingerGrace after the end.
	LingerInterval time.Duration `long:"linger-interval" description:"How often lnd's channels are checked for HTLCs of ended payments that lnd did not remove"`
	LingerGrace    time.Duration `long:"linger-grace" description:"How long after a payment ended lnd may still have its incoming HTLC before it is reported"`

	// MaxAmountMsat caps a single async payment.
	MaxAmountMsat lnwire.MilliSatoshi `long:"max-amount-msat" description:"Largest amount of one async payment, in msat"`
}

// DefaultConfig returns the defaults. The margins keep every hold far from
// lnd's own limits: with a 1008-block hold, a hold is released no later than
// 240 blocks before its HTLC expires and canceled then at the latest, long
// before lnd's 18-block auto-cancel and 16-block force close.
func DefaultConfig() Config {
	return Config{
		FeeBaseMsat:           1_000,
		FeePPM:                1_000,
		HoldCltvDelta:         1008,
		HoldInvoiceExpiry:     time.Hour,
		SafetyMarginBlocks:    40,
		MinOutboundCltv:       200,
		MaxHoldTime:           7 * 24 * time.Hour,
		MinInvoiceLife:        time.Hour,
		InvoiceExpiryMargin:   5 * time.Minute,
		MaxRoutingFeeBaseMsat: 10_000,
		MaxRoutingFeePPM:      5_000,
		MaxParts:              16,
		PaymentTimeout:        60 * time.Second,
		QuickRetries:          []time.Duration{time.Second, 5 * time.Second, 15 * time.Second},
		SlowRetryInterval:     time.Minute,
		MinFreeHTLCSlots:      2,
		CapacityOvercommit:    1,
		CapacityRefresh:       2 * time.Second,
		ReleaseClockSkew:      2 * time.Minute,
		RequestTimeout:        10 * time.Second,
		DeadlineInterval:      10 * time.Second,
		ReconcileInterval:     30 * time.Minute,
		LingerInterval:        time.Minute,
		LingerGrace:           2 * time.Minute,
		MaxInvoiceStreams:     256,
		MaxForwarding:         128,
		MaxAmountMsat:         lnwire.NewMSatFromSatoshis(10_000_000),
	}
}

// The bounds of capacity-overcommit and capacity-refresh. Below 1,
// overcommit keeps part of the liquidity free; 100 is far beyond any sane
// bet. A channel view older than a minute would admit holds on liquidity
// long gone.
const (
	minOvercommit      = 0.01
	maxOvercommit      = 100
	maxCapacityRefresh = time.Minute
)

// lndAutoCancelBlocks is lnd's --invoices.holdexpirydelta: it cancels an
// accepted hold invoice on its own this many blocks before the HTLC expires.
const lndAutoCancelBlocks = 18

// Validate checks that the margins fit together, naming the option at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if c.SafetyMarginBlocks <= lndAutoCancelBlocks {
		bad("safety-margin-blocks %d must be above lnd's %d-block hold "+
			"expiry delta", c.SafetyMarginBlocks, lndAutoCancelBlocks)
	}
	if c.MinOutboundCltv < 40 {
		bad("min-outbound-cltv %d is too small to reach any receiver", c.MinOutboundCltv)
	}
	if need := c.SafetyMarginBlocks + c.MinOutboundCltv; c.HoldCltvDelta <= need {
		bad("hold-cltv-delta %d must exceed safety-margin-blocks + "+
			"min-outbound-cltv (%d)", c.HoldCltvDelta, need)
	}
	if c.HoldCltvDelta > 2012 {
		bad("hold-cltv-delta %d: payers refuse more than 2012 blocks "+
			"(lnd's default --max-cltv-expiry 2016)", c.HoldCltvDelta)
	}
	if c.HoldInvoiceExpiry <= 0 || c.MaxHoldTime <= 0 || c.PaymentTimeout < time.Second {
		bad("hold-invoice-expiry, max-hold-time and payment-timeout must be positive")
	}
	if c.MaxParts == 0 || c.MaxParts > 16 {
		bad("max-parts %d must be between 1 and 16", c.MaxParts)
	}
	if c.SlowRetryInterval <= 0 || c.DeadlineInterval <= 0 || c.RequestTimeout <= 0 ||
		c.ReconcileInterval <= 0 || c.LingerInterval <= 0 || c.LingerGrace <= 0 {
		bad("slow-retry-interval, deadline-interval, reconcile-interval, " +
			"linger-interval, linger-grace and request-timeout must be positive")
	}
	if c.MaxForwarding < 1 {
		bad("max-forwarding %d must be at least 1", c.MaxForwarding)
	}
	if c.MaxInvoiceStreams < 1 {
		bad("max-invoice-streams %d must be at least 1", c.MaxInvoiceStreams)
	}
	if c.MaxAmountMsat == 0 {
		bad("max-amount-msat must be positive")
	}
	// NaN fails both comparisons.
	if !(c.CapacityOvercommit >= minOvercommit && c.CapacityOvercommit <= maxOvercommit) {
		bad("capacity-overcommit %v must be from %v to %v", c.CapacityOvercommit,
			minOvercommit, maxOvercommit)
	}
	if c.CapacityRefresh < 0 || c.CapacityRefresh > maxCapacityRefresh {
		bad("capacity-refresh %v must be from 0 to %v", c.CapacityRefresh,
			maxCapacityRefresh)
	}
	return errors.Join(errs...)
}

// Fee is what the LSP charges on top of amount.
func (c *Config) Fee(amount lnwire.MilliSatoshi) lnwire.MilliSatoshi {
	return c.FeeBaseMsat + amount*lnwire.MilliSatoshi(c.FeePPM)/1_000_000
}

// RoutingFeeLimit is the most the outbound payment of amount may cost.
func (c *Config) RoutingFeeLimit(amount lnwire.MilliSatoshi) lnwire.MilliSatoshi {
	return c.MaxRoutingFeeBaseMsat +
		amount*lnwire.MilliSatoshi(c.MaxRoutingFeePPM)/1_000_000
}

// DeadlineHeight is the height by which a hold whose incoming HTLCs expire
// at incomingExpiry must be released, or is canceled.
// An expiry too low to leave any budget gives height 1: due at once.
func (c *Config) DeadlineHeight(incomingExpiry uint32) uint32 {
	margin := c.SafetyMarginBlocks + c.MinOutboundCltv
	if incomingExpiry <= margin+1 {
		return 1
	}
	return incomingExpiry - margin
}

// CltvLimit is the CLTV budget of an outbound payment made at height for a
// hold whose incoming HTLCs expire at incomingExpiry: the route must end
// SafetyMarginBlocks before it (invariant 4). ok is false when the budget is
// below MinOutboundCltv: too late to pay safely.
func (c *Config) CltvLimit(incomingExpiry, height uint32) (limit uint32, ok bool) {
	end := incomingExpiry - c.SafetyMarginBlocks
	if height >= end {
		return 0, false
	}
	limit = end - height
	return limit, limit >= c.MinOutboundCltv
}

// RetryDelay is how long to wait before outbound attempt number next (2 is
// the first retry) under a patient policy.
func (c *Config) RetryDelay(next int) time.Duration {
	if i := next - 2; i >= 0 && i < len(c.QuickRetries) {
		return c.QuickRetries[i]
	}
	return c.SlowRetryInterval
}
