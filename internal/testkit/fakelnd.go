package testkit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// FakeLnd is an lnd for state-machine tests of the sender role: hold
// invoices the test pays, receiver invoices it decodes, outbound payments
// whose outcome the test scripts, and blocks it mines. It keeps the
// adapter's contract (internal/lnd): errors, idempotent settle and cancel,
// subscriptions that start with the current state.
type FakeLnd struct {
	clock clock.Clock

	mu       sync.Mutex
	blocks   chan struct{}                  // closed and replaced on every block
	watchers map[lntypes.Hash]chan struct{} // likewise, per payment hash
	height   uint32
	invoices map[lntypes.Hash]*lnd.Invoice
	payments map[lntypes.Hash]*lnd.Payment
	secrets  map[lntypes.Hash]lntypes.Preimage
	scripts  map[lntypes.Hash][]Outcome
	channels []lnd.Channel
	pending  lnd.PendingChannels
	peers    []route.Vertex
	sent     []lnd.SendPaymentRequest
	calls    map[string]int
	errs     map[string]error

	// file, when set, receives the state after every change (Persist).
	file string

	// otherwise is the outcome of attempts without a scripted one.
	otherwise Outcome

	// autoPay accepts every new hold invoice at once, as if the sender
	// paid it (AutoPay).
	autoPay bool

	// hook runs at named points of the fake's life (SetHook).
	hook func(method, phase string)

	// addIndex is the last invoice's add index, htlcIndex the next
	// incoming HTLC's index on channel 1.
	addIndex  uint64
	htlcIndex uint64

	// byAddIndex is invoices in AddIndex order (ListPendingInvoices).
	byAddIndex []*lnd.Invoice

	// htlcLog is every HTLC event so far, for the node-wide streams
	// (SubscribeHtlcEvents); htlcChanged is closed and replaced on every
	// append; while htlcDown, events are lost (HtlcEventsDown).
	htlcLog     []lnd.HtlcEvent
	htlcChanged chan struct{}
	htlcDown    bool

	// inFlight counts the RPCs under way, maxInFlight its peak; latency
	// (nanoseconds) delays each RPC (SetLatency).
	inFlight, maxInFlight, latency atomic.Int64
}

// Outcome scripts one outbound payment attempt.
type Outcome struct {
	// Fail, if set, fails the attempt with this reason; otherwise it
	// succeeds.
	Fail lnd.FailureReason

	// FailureCode is the HTLC's failure message, e.g.
	// "TEMPORARY_CHANNEL_FAILURE".
	FailureCode string

	// FailureHeight is the height the failing node reports with it.
	FailureHeight uint32

	// Hang keeps the attempt in flight until ResolvePayment.
	Hang bool
}

// NewFakeLnd returns a fake lnd at height 1000 with one active channel of
// 0.1 BTC toward peer.
func NewFakeLnd(clk clock.Clock, peer onionmsg.NodeKey) *FakeLnd {
	return &FakeLnd{
		clock:    clk,
		blocks:   make(chan struct{}),
		watchers: map[lntypes.Hash]chan struct{}{},
		height:   1000,
		invoices: map[lntypes.Hash]*lnd.Invoice{},
		payments: map[lntypes.Hash]*lnd.Payment{},
		secrets:  map[lntypes.Hash]lntypes.Preimage{},
		scripts:  map[lntypes.Hash][]Outcome{},
		channels: []lnd.Channel{{
			ChanID: 1, RemotePubKey: route.Vertex(peer), Capacity: 10_000_000,
			LocalBalance: 10_000_000, Active: true,
			MaxIncomingHTLCs: 483, MaxOutgoingHTLCs: 483,
		}},
		calls:       map[string]int{},
		errs:        map[string]error{},
		htlcChanged: make(chan struct{}),
	}
}

// notify saves the state if the fake persists it, and wakes the
// subscriptions of hash (both its invoice and its payment); f.mu is held.
func (f *FakeLnd) notify(hash lntypes.Hash) {
	f.save()
	if ch, ok := f.watchers[hash]; ok {
		close(ch)
		delete(f.watchers, hash)
	}
}

// watch returns the channel closed at the next change of hash; f.mu is held.
func (f *FakeLnd) watch(hash lntypes.Hash) chan struct{} {
	ch, ok := f.watchers[hash]
	if !ok {
		ch = make(chan struct{})
		f.watchers[hash] = ch
	}
	return ch
}

// enter counts a call, runs the hook's "before" point, and returns the
// error the test injected for it.
func (f *FakeLnd) enter(method string) error {
	f.calls[method]++
	f.at(method, "before")
	return f.errs[method]
}

// at runs the hook, if any, at a point of the fake's life.
func (f *FakeLnd) at(method, phase string) {
	if f.hook != nil {
		f.hook(method, phase)
	}
}

// SetHook makes the fake call hook at named points: ("<RPC>", "before")
// when an RPC is entered, ("<RPC>", "after") once its change is made (and
// persisted), and ("PaymentUpdate" or "InvoiceUpdate", "<STATE>") before a
// subscription delivers a state. The crash tests kill the process there.
func (f *FakeLnd) SetHook(hook func(method, phase string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = hook
}

// AutoPay makes the fake accept every new hold invoice at once, with HTLCs
// expiring the invoice's CLTV delta above the current height.
func (f *FakeLnd) AutoPay() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.autoPay = true
}

// FailCalls makes every later call of method fail with err (nil: succeed).
func (f *FakeLnd) FailCalls(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[method] = err
}

// Calls is how often method was called.
func (f *FakeLnd) Calls(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// Sent returns the outbound payment requests made so far.
func (f *FakeLnd) Sent() []lnd.SendPaymentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lnd.SendPaymentRequest(nil), f.sent...)
}

// SetChannels replaces the node's channels.
func (f *FakeLnd) SetChannels(chans []lnd.Channel) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.channels = chans
}

// SetPendingChannels replaces the node's channels being opened or closed.
func (f *FakeLnd) SetPendingChannels(p lnd.PendingChannels) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = p
}

// SetPeers replaces the peers connected to the node (none at first).
func (f *FakeLnd) SetPeers(peers ...route.Vertex) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers = peers
}

// Mine advances the chain by n blocks.
func (f *FakeLnd) Mine(n uint32) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.height += n
	f.save()
	close(f.blocks)
	f.blocks = make(chan struct{})
	return f.height
}

// ReceiverInvoice makes an invoice of the receiver dest, amount 0 for
// amountless, valid for expiry from the fake's clock. See FakeInvoice.
func (f *FakeLnd) ReceiverInvoice(dest onionmsg.NodeKey, amount lnwire.MilliSatoshi,
	expiry time.Duration) (string, lntypes.Preimage) {

	return FakeInvoice(dest, amount, f.clock.Now(), expiry)
}

// Script queues outcomes for the next outbound attempts paying hash; an
// attempt without a scripted outcome succeeds.
func (f *FakeLnd) Script(hash lntypes.Hash, outcomes ...Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[hash] = append(f.scripts[hash], outcomes...)
}

// Otherwise sets the outcome of every attempt without a scripted one
// (success unless set).
func (f *FakeLnd) Otherwise(o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.otherwise = o
	f.save()
}

// Invoice returns the hold invoice for hash, as lnd would.
func (f *FakeLnd) Invoice(hash lntypes.Hash) (lnd.Invoice, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv, ok := f.invoices[hash]
	if !ok {
		return lnd.Invoice{}, false
	}
	return snapshotInvoice(inv), true
}

// PayHoldInvoice is the sender paying the hold invoice for hash with HTLCs
// expiring at expiry: lnd accepts them.
func (f *FakeLnd) PayHoldInvoice(hash lntypes.Hash, expiry uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv, ok := f.invoices[hash]
	if !ok || inv.State != lnd.InvoiceOpen {
		return fmt.Errorf("fake lnd: no open invoice %s", hash)
	}
	f.accept(inv, expiry)
	f.notify(hash)
	return nil
}

// accept is the sender's one HTLC arriving on channel 1 (lnd emits no
// HTLC event for it); f.mu is held.
func (f *FakeLnd) accept(inv *lnd.Invoice, expiry uint32) {
	inv.State, inv.AmountPaidMsat = lnd.InvoiceAccepted, inv.ValueMsat
	inv.HTLCs = []lnd.InvoiceHTLC{{ChanID: 1, HTLCIndex: f.htlcIndex,
		AmountMsat: inv.ValueMsat, MPPTotalMsat: inv.ValueMsat,
		AcceptHeight: f.height, ExpiryHeight: expiry,
		State: lnd.HTLCAccepted}}
	f.htlcIndex++
}

// CancelByLnd is lnd canceling the invoice on its own (expiry): its
// accepted HTLCs fail back, with their HTLC events.
func (f *FakeLnd) CancelByLnd(hash lntypes.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inv, ok := f.invoices[hash]; ok && !inv.State.IsFinal() {
		f.cancel(inv)
		f.notify(hash)
	}
}

// cancel cancels inv and fails its accepted HTLCs back; f.mu is held.
func (f *FakeLnd) cancel(inv *lnd.Invoice) {
	inv.State = lnd.InvoiceCanceled
	f.resolveHTLCs(inv, lnd.HTLCCanceled)
}

// resolveHTLCs settles or cancels inv's accepted HTLCs and emits the HTLC
// events lnd v0.21 does (TestRegtest/HtlcEvents): LINK_FAILED
// (INVOICE_CANCELED) then FINAL_FAILED, or SETTLED then FINAL_SETTLED;
// f.mu is held.
func (f *FakeLnd) resolveHTLCs(inv *lnd.Invoice, to lnd.HTLCState) {
	now := f.clock.Now()
	for i := range inv.HTLCs {
		h := &inv.HTLCs[i]
		if h.State != lnd.HTLCAccepted {
			continue
		}
		h.State = to
		first := lnd.HtlcEvent{Kind: lnd.HtlcSettled,
			Circuit: h.Circuit(), Time: now}
		last := lnd.HtlcEvent{Kind: lnd.HtlcFinalSettled,
			Circuit: h.Circuit(), Offchain: true, Time: now}
		if to == lnd.HTLCCanceled {
			first.Kind, first.FailureDetail = lnd.HtlcLinkFailed,
				"INVOICE_CANCELED"
			last.Kind = lnd.HtlcFinalFailed
		}
		f.emitHtlc(first, last)
	}
}

// ResolvePayment ends a hanging outbound payment with o.
func (f *FakeLnd) ResolvePayment(hash lntypes.Hash, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.payments[hash]; ok && p.Status == lnd.PaymentInFlight {
		f.finishPayment(p, o)
		f.notify(hash)
	}
}

// Payment returns the outbound payment for hash.
func (f *FakeLnd) Payment(hash lntypes.Hash) (lnd.Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.payments[hash]
	if !ok {
		return lnd.Payment{}, false
	}
	return snapshotPayment(p), true
}

// finishPayment ends p with o: its HTLC in flight (a hanging payment's)
// ends so, or one is added.
func (f *FakeLnd) finishPayment(p *lnd.Payment, o Outcome) {
	a := lnd.HTLCAttempt{Status: lnd.AttemptSucceeded}
	if n := len(p.HTLCs); n > 0 && p.HTLCs[n-1].Status == lnd.AttemptInFlight {
		a, p.HTLCs = p.HTLCs[n-1], p.HTLCs[:n-1]
		a.Status = lnd.AttemptSucceeded
	}
	if o.Fail != lnd.FailureNone {
		p.Status, p.FailureReason = lnd.PaymentFailed, o.Fail
		a.Status, a.FailureCode, a.FailureHeight = lnd.AttemptFailed,
			o.FailureCode, o.FailureHeight
	} else {
		p.Status, p.Preimage, p.FeeMsat = lnd.PaymentSucceeded, f.secrets[p.Hash], 1000
	}
	p.HTLCs = append(p.HTLCs, a)
}

func snapshotInvoice(inv *lnd.Invoice) lnd.Invoice {
	c := *inv
	c.HTLCs = append([]lnd.InvoiceHTLC(nil), inv.HTLCs...)
	return c
}

func snapshotPayment(p *lnd.Payment) lnd.Payment {
	c := *p
	c.HTLCs = append([]lnd.HTLCAttempt(nil), p.HTLCs...)
	return c
}
