package testkit

import (
	"context"
	"fmt"
	"reflect"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// The RPCs of FakeLnd, with the adapter's signatures and errors.

func (f *FakeLnd) CurrentHeight(ctx context.Context) (uint32, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CurrentHeight"); err != nil {
		return 0, err
	}
	return f.height, nil
}

func (f *FakeLnd) SubscribeBlocks(ctx context.Context) (*lnd.Subscription[uint32], error) {
	defer f.call()()
	f.mu.Lock()
	err := f.enter("SubscribeBlocks")
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return follow(ctx, f, func() (uint32, bool, bool) {
		return f.height, true, false
	}, func() chan struct{} { return f.blocks }, nil), nil
}

func (f *FakeLnd) AddHoldInvoice(ctx context.Context, req lnd.HoldInvoiceRequest) (lnd.AddedInvoice, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("AddHoldInvoice"); err != nil {
		return lnd.AddedInvoice{}, err
	}
	if _, ok := f.invoices[req.Hash]; ok {
		return lnd.AddedInvoice{}, fmt.Errorf("fake AddHoldInvoice: %w", lnd.ErrInvoiceExists)
	}
	payReq := "lnbcrtfakehold1" + req.Hash.String()
	f.addIndex++
	f.invoices[req.Hash] = &lnd.Invoice{
		Hash: req.Hash, PaymentRequest: payReq, Memo: req.Memo,
		ValueMsat: req.ValueMsat, State: lnd.InvoiceOpen,
		CreatedAt: f.clock.Now(), Expiry: req.Expiry, CltvExpiry: req.CltvExpiry,
		AddIndex: f.addIndex,
	}
	if f.autoPay {
		f.accept(f.invoices[req.Hash], f.height+uint32(req.CltvExpiry))
	}
	f.notify(req.Hash)
	f.at("AddHoldInvoice", "after")
	return lnd.AddedInvoice{Hash: req.Hash, PaymentRequest: payReq, AddIndex: f.addIndex}, nil
}

func (f *FakeLnd) SubscribeSingleInvoice(ctx context.Context, hash lntypes.Hash) (*lnd.Subscription[lnd.Invoice], error) {
	defer f.call()()
	f.mu.Lock()
	err := f.enter("SubscribeSingleInvoice")
	_, ok := f.invoices[hash]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("fake SubscribeSingleInvoice: %w", lnd.ErrInvoiceNotFound)
	}
	return follow(ctx, f, func() (lnd.Invoice, bool, bool) {
		inv := f.invoices[hash]
		return snapshotInvoice(inv), true, inv.State.IsFinal()
	}, func() chan struct{} { return f.watch(hash) }, func(inv lnd.Invoice) { f.at("InvoiceUpdate", inv.State.String()) }), nil
}

func (f *FakeLnd) LookupInvoice(ctx context.Context, hash lntypes.Hash) (lnd.Invoice, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("LookupInvoice"); err != nil {
		return lnd.Invoice{}, err
	}
	inv, ok := f.invoices[hash]
	if !ok {
		return lnd.Invoice{}, fmt.Errorf("fake LookupInvoice: %w", lnd.ErrInvoiceNotFound)
	}
	return snapshotInvoice(inv), nil
}

func (f *FakeLnd) SettleInvoice(ctx context.Context, preimage lntypes.Preimage) error {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("SettleInvoice"); err != nil {
		return err
	}
	inv, ok := f.invoices[preimage.Hash()]
	switch {
	case !ok:
		return fmt.Errorf("fake SettleInvoice: %w", lnd.ErrInvoiceNotFound)
	case inv.State == lnd.InvoiceSettled:
		return nil
	case inv.State == lnd.InvoiceCanceled:
		return fmt.Errorf("fake SettleInvoice: %w", lnd.ErrInvoiceCanceled)
	case inv.State == lnd.InvoiceOpen:
		return fmt.Errorf("fake SettleInvoice: %w", lnd.ErrInvoiceOpen)
	}
	inv.State, inv.Preimage = lnd.InvoiceSettled, &preimage
	f.resolveHTLCs(inv, lnd.HTLCSettled)
	f.notify(inv.Hash)
	f.at("SettleInvoice", "after")
	return nil
}

func (f *FakeLnd) CancelInvoice(ctx context.Context, hash lntypes.Hash) error {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("CancelInvoice"); err != nil {
		return err
	}
	inv, ok := f.invoices[hash]
	switch {
	case !ok:
		return fmt.Errorf("fake CancelInvoice: %w", lnd.ErrInvoiceNotFound)
	case inv.State == lnd.InvoiceCanceled:
		return nil
	case inv.State == lnd.InvoiceSettled:
		return fmt.Errorf("fake CancelInvoice: %w", lnd.ErrInvoiceSettled)
	}
	f.cancel(inv)
	f.notify(hash)
	f.at("CancelInvoice", "after")
	return nil
}

func (f *FakeLnd) DecodePayReq(ctx context.Context, payReq string) (lnd.PayReq, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("DecodePayReq"); err != nil {
		return lnd.PayReq{}, err
	}
	_, pr, err := decodeFakeInvoice(payReq)
	if err != nil {
		return lnd.PayReq{}, fmt.Errorf("fake DecodePayReq: %w", err)
	}
	return pr, nil
}

func (f *FakeLnd) SendPayment(ctx context.Context, req lnd.SendPaymentRequest) (*lnd.Subscription[lnd.Payment], error) {
	done := f.call() // ended before TrackPayment counts itself
	f.mu.Lock()
	if err := f.enter("SendPayment"); err != nil {
		f.mu.Unlock()
		done()
		return nil, err
	}
	fi, pr, err := decodeFakeInvoice(req.Invoice)
	if err != nil {
		f.mu.Unlock()
		done()
		return nil, fmt.Errorf("fake SendPayment: %w", err)
	}
	f.secrets[pr.Hash] = fi.Preimage
	if p, ok := f.payments[pr.Hash]; ok && p.Status != lnd.PaymentFailed {
		f.mu.Unlock()
		done()
		return nil, fmt.Errorf("fake SendPayment: %w", lnd.ErrPaymentExists)
	}
	f.sent = append(f.sent, req)
	value := req.AmountMsat
	if value == 0 {
		value = pr.AmountMsat
	}
	p := &lnd.Payment{Hash: pr.Hash, Status: lnd.PaymentInFlight, ValueMsat: value}
	f.payments[pr.Hash] = p
	o := f.otherwise
	if q := f.scripts[pr.Hash]; len(q) > 0 {
		o, f.scripts[pr.Hash] = q[0], q[1:]
	}
	if o.Hang {
		// One HTLC in flight, its route as long as the limit allows.
		p.HTLCs = []lnd.HTLCAttempt{{Status: lnd.AttemptInFlight,
			AmountMsat: value, TimeLock: f.height + req.CLTVLimit}}
	} else {
		f.finishPayment(p, o)
	}
	f.notify(pr.Hash)
	f.at("SendPayment", "after")
	f.mu.Unlock()
	done()
	return f.TrackPayment(ctx, pr.Hash)
}

func (f *FakeLnd) TrackPayment(ctx context.Context, hash lntypes.Hash) (*lnd.Subscription[lnd.Payment], error) {
	defer f.call()()
	f.mu.Lock()
	err := f.enter("TrackPayment")
	_, ok := f.payments[hash]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("fake TrackPayment: %w", lnd.ErrPaymentNotFound)
	}
	return follow(ctx, f, func() (lnd.Payment, bool, bool) {
		p := f.payments[hash]
		return snapshotPayment(p), true, p.Status.IsFinal()
	}, func() chan struct{} { return f.watch(hash) }, func(p lnd.Payment) { f.at("PaymentUpdate", p.Status.String()) }), nil
}

func (f *FakeLnd) ListChannels(ctx context.Context) ([]lnd.Channel, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ListChannels"); err != nil {
		return nil, err
	}
	return append([]lnd.Channel(nil), f.channels...), nil
}

func (f *FakeLnd) PendingChannels(ctx context.Context) (lnd.PendingChannels, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("PendingChannels"); err != nil {
		return lnd.PendingChannels{}, err
	}
	return f.pending, nil
}

func (f *FakeLnd) ConnectedPeers(ctx context.Context) ([]route.Vertex, error) {
	defer f.call()()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("ConnectedPeers"); err != nil {
		return nil, err
	}
	return append([]route.Vertex(nil), f.peers...), nil
}

// follow feeds a subscription with read()'s value, first at once and then
// after every change that alters it (watch gives the channel closed at the
// next change), until read says final or the subscriber leaves. read and
// watch run with f.mu held; deliver, if set, just before each delivery.
func follow[T any](ctx context.Context, f *FakeLnd, read func() (T, bool, bool),
	watch func() chan struct{}, deliver func(T)) *lnd.Subscription[T] {
	sub, feed := lnd.NewFeed[T](ctx)
	go func() {
		var (
			last      T
			delivered bool
		)
		for {
			f.mu.Lock()
			v, ok, final := read()
			changed := watch()
			send := ok && (!delivered || !reflect.DeepEqual(v, last))
			if send && deliver != nil {
				deliver(v)
			}
			f.mu.Unlock()
			if send {
				if !feed.Send(v) {
					feed.End(context.Canceled)
					return
				}
				last, delivered = v, true
			}
			if final {
				feed.End(nil)
				return
			}
			select {
			case <-changed:
			case <-feed.Done():
				feed.End(context.Canceled)
				return
			}
		}
	}()
	return sub
}
