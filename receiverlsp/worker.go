package receiverlsp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/routing/route"
)

// hookKey names one job of the webhook sender: a notification of a method
// to a receiver's webhooks (the unit of the cooldown), or, for
// webhook_registered, to its one webhook under app.
type hookKey struct {
	receiver route.Vertex
	method   noticeMethod
	app      string
}

// target is a webhook a job posts to.
type target struct{ app, url string }

// hook is one job, and what to record once it is done with (delivered to
// each target, or given up on).
type hook struct {
	key     hookKey
	notice  notice
	targets []target
	done    func(tx *holdstore.Tx) error
}

// registration reports whether the job is a webhook_registered.
func (h *hook) registration() bool { return h.key.method == noticeWebhookRegistered }

// delivered is a job's end, reported to Run.
type delivered struct {
	hook *hook
	err  error
}

// worker is Run's state; only Run's goroutine touches it.
type worker struct {
	inFlight  map[hookKey]bool
	results   chan delivered
	wg        sync.WaitGroup
	lastSweep time.Time
}

// Run does the role's background work until ctx ends: it expires mailbox
// items past their deadline, sends the webhooks owed, and relays recorded
// releases that did not reach the bus. Webhooks: webhook_registered to each
// webhook set or changed, and, once none of a receiver's webhooks owes it,
// payment_incoming, hold_expiring and invoices_low to all of them, each
// method at most once per cooldown per receiver, later ones coalesced.
// Everything it does is driven by what is stored (cooldowns included), so a
// restart picks up where it stopped. It returns nil once its deliveries
// have stopped.
func (r *Role) Run(ctx context.Context) error {
	w := &worker{
		inFlight: map[hookKey]bool{},
		results:  make(chan delivered),
	}
	defer w.wg.Wait()
	var (
		timer   <-chan time.Time
		timerAt time.Time
	)
	for {
		next := r.pass(ctx, w)
		r.passes.Add(1)
		if at := r.clock.Now().Add(next); timer == nil || at.Before(timerAt) {
			timer, timerAt = r.clock.TickAfter(next), at
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.poke:
		case d := <-w.results:
			r.finish(ctx, w, d)
		case <-timer:
			timer = nil
		}
	}
}

// pass does what is due and returns how long until the next pass should
// run at the latest.
func (r *Role) pass(ctx context.Context, w *worker) time.Duration {
	now := r.clock.Now()
	next := r.opts.SweepInterval
	height, err := r.height.CurrentHeight(ctx)
	if err != nil {
		r.warn(ctx, "no block height; deadlines in blocks wait", "err", err)
		height = 0
	}
	if now.Sub(w.lastSweep) >= r.opts.SweepInterval || w.lastSweep.IsZero() {
		w.lastSweep = now
		r.sweep(ctx, now, height)
	} else {
		next = w.lastSweep.Add(r.opts.SweepInterval).Sub(now)
	}
	hooks, err := r.hooksOwed(ctx, now, height)
	if err != nil {
		r.warn(ctx, "cannot read the webhooks owed", "err", err)
		return next
	}
	for _, h := range hooks {
		if w.inFlight[h.key] {
			continue
		}
		if len(w.inFlight) >= r.opts.Webhook.MaxInFlight {
			break
		}
		if !h.registration() {
			wait, err := r.prepare(ctx, h, now)
			if err != nil {
				r.warn(ctx, "cannot prepare webhook", "receiver",
					nodeKey(h.key.receiver), "method", h.key.method, "err", err)
				continue
			}
			if wait > 0 {
				next = min(next, wait)
				continue
			}
			if h.targets == nil {
				continue // waits for a webhook_registered
			}
			if len(h.targets) == 0 {
				// The receiver has no webhook left: nothing to send.
				if err := r.store.Update(ctx, h.done); err != nil {
					r.warn(ctx, "cannot record webhook", "err", err)
				}
				continue
			}
		}
		w.inFlight[h.key] = true
		w.wg.Go(func() {
			err := r.deliverAll(ctx, h)
			select {
			case w.results <- delivered{h, err}:
			case <-ctx.Done():
			}
		})
	}
	return max(next, time.Millisecond)
}

// prepare readies a notification to a receiver's webhooks: how long its
// method's cooldown still runs, or its targets, every webhook of the
// receiver (55:97-99, 296-298), which it records as the start of the
// cooldown before anything is sent. Targets stay nil while any of them
// owes webhook_registered, which must reach it first (55:235-236); they
// are empty if the receiver has no webhook.
func (r *Role) prepare(ctx context.Context, h *hook, now time.Time) (time.Duration, error) {
	method := h.key.method.String()
	// 55:620-634: not the same method again within the cooldown.
	at, ok, err := r.store.LastNotified(ctx, h.key.receiver, method)
	if err != nil {
		return 0, err
	}
	if wait := at.Add(r.opts.Webhook.Cooldown).Sub(now); ok && wait > 0 {
		return wait, nil
	}
	hooks, err := r.store.Webhooks(ctx, h.key.receiver)
	if err != nil {
		return 0, err
	}
	targets := make([]target, 0, len(hooks))
	for _, wh := range hooks {
		if wh.RegisteredOwed {
			return 0, nil
		}
		targets = append(targets, target{wh.AppName, wh.URL})
	}
	if len(targets) > 0 {
		err := r.store.Update(ctx, func(tx *holdstore.Tx) error {
			return tx.Notified(h.key.receiver, method)
		})
		if err != nil {
			return 0, err
		}
	}
	h.targets = targets
	return 0, nil
}

// deliverAll delivers a job to each of its targets at once.
func (r *Role) deliverAll(ctx context.Context, h *hook) error {
	errs := make([]error, len(h.targets))
	var wg sync.WaitGroup
	for i, t := range h.targets {
		wg.Go(func() {
			if err := r.deliver(ctx, t.url, h.notice); err != nil {
				errs[i] = fmt.Errorf("app %q: %w", t.app, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// finish records that a webhook is done with. One that failed for good is
// given up on: a wake-up is worth a few tries, not a queue that grows.
func (r *Role) finish(ctx context.Context, w *worker, d delivered) {
	delete(w.inFlight, d.hook.key)
	log := r.log.With("receiver", nodeKey(d.hook.key.receiver),
		"method", d.hook.key.method, "webhooks", len(d.hook.targets))
	if d.err != nil {
		log.Warn("webhook given up", "err", d.err)
	} else {
		log.Debug("webhook delivered")
	}
	if err := r.store.Update(ctx, d.hook.done); err != nil {
		log.Warn("cannot record webhook", "err", err)
	}
}

// sweep expires pending items past their deadline, forgets expired
// registration challenges, and relays releases that did not reach the bus.
func (r *Role) sweep(ctx context.Context, now time.Time, height uint32) {
	var expired []*holdstore.MailboxItem
	err := r.store.Update(ctx, func(tx *holdstore.Tx) (err error) {
		if _, err := tx.PruneChallenges(now); err != nil {
			return err
		}
		// No held_htlc_available older than the inbound stream's
		// retention can still be redelivered.
		if _, err := tx.PruneTombstones(now.Add(-bus.DefaultMaxAge)); err != nil {
			return err
		}
		expired, err = tx.ExpireDue(now, height, ReasonDeadline)
		return err
	})
	if err != nil {
		r.warn(ctx, "sweep failed", "err", err)
		return
	}
	for _, it := range expired {
		r.log.Info("mailbox item expired", "hold", onionmsg.HoldID(it.HoldID),
			"sender_lsp", nodeKey(it.SenderLSP), "receiver", nodeKey(it.ReceiverKey))
		r.changed.notify(it.SenderLSP, it.HoldID)
	}
	unrelayed, err := r.store.Unrelayed(ctx, now.Add(-r.opts.RelayRetry))
	if err != nil {
		r.warn(ctx, "cannot read unrelayed releases", "err", err)
		return
	}
	for _, it := range unrelayed {
		rel, err := onionmsg.DecodeReleaseHeldHTLC(it.Release)
		if err == nil {
			err = r.relay(ctx, nodeKey(it.SenderLSP), rel, it.Release)
		}
		if err != nil {
			r.warn(ctx, "release not relayed yet", "hold",
				onionmsg.HoldID(it.HoldID), "err", err)
			continue
		}
		r.log.Info("release relayed again", "hold", onionmsg.HoldID(it.HoldID))
	}
}

// hooksOwed reads the webhooks the stored state owes: first every
// webhook_registered, then the notifications to all of a receiver's
// webhooks.
func (r *Role) hooksOwed(ctx context.Context, now time.Time, height uint32) ([]*hook, error) {
	var hooks []*hook
	regs, err := r.store.RegistrationsOwed(ctx)
	if err != nil {
		return nil, err
	}
	for _, key := range regs {
		whs, err := r.store.Webhooks(ctx, key)
		if err != nil {
			return nil, err
		}
		for _, wh := range whs {
			if !wh.RegisteredOwed {
				continue
			}
			// 55:227-232: to the webhook just set, and only to it.
			hooks = append(hooks, &hook{
				key:     hookKey{key, noticeWebhookRegistered, wh.AppName},
				notice:  notice{method: noticeWebhookRegistered},
				targets: []target{{wh.AppName, wh.URL}},
				done: func(tx *holdstore.Tx) error {
					return tx.MarkWebhookRegistered(key, wh.AppName, wh.Version)
				},
			})
		}
	}

	wakes, err := r.store.WakesOwed(ctx)
	if err != nil {
		return nil, err
	}
	for _, wk := range wakes {
		// 55:303-305: an incoming payment to the client.
		hooks = append(hooks, &hook{
			key:    hookKey{receiver: wk.Receiver, method: noticePaymentIncoming},
			notice: notice{method: noticePaymentIncoming},
			done:   func(tx *holdstore.Tx) error { return tx.MarkWoken(wk.Receiver, wk.Newest) },
		})
	}

	soonHeight := uint32(0)
	if height > 0 {
		soonHeight = height + r.opts.Webhook.HoldExpiringBlocks
	}
	soon, err := r.store.ExpiringSoon(ctx, now.Add(r.opts.Webhook.HoldExpiring), soonHeight)
	if err != nil {
		return nil, err
	}
	byReceiver := map[route.Vertex][]*holdstore.MailboxItem{}
	for _, it := range soon {
		byReceiver[it.ReceiverKey] = append(byReceiver[it.ReceiverKey], it)
	}
	for key, items := range byReceiver {
		p := holdExpiringParams{Count: len(items),
			DeadlineHeight: items[0].DeadlineHeight,
			DeadlineTime:   lspsTime(items[0].DeadlineTime)}
		for _, it := range items {
			p.DeadlineHeight = min(p.DeadlineHeight, it.DeadlineHeight)
			if it.DeadlineTime.Before(time.Time(p.DeadlineTime)) {
				p.DeadlineTime = lspsTime(it.DeadlineTime)
			}
		}
		// Not lsps5.expiry_soon: no HTLC on a channel with the client
		// nears a timeout that would close it (55:500-508). A held
		// payment nears the deadline its sender LSP cancels it at.
		hooks = append(hooks, &hook{
			key:    hookKey{receiver: key, method: noticeHoldExpiring},
			notice: notice{method: noticeHoldExpiring, params: p},
			done:   func(tx *holdstore.Tx) error { return tx.MarkWarned(items) },
		})
	}

	low, err := r.store.InvoicesLowOwed(ctx)
	if err != nil {
		return nil, err
	}
	for _, rec := range low {
		c, err := r.store.CountInvoices(ctx, rec.NodeKey, now)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, &hook{
			key: hookKey{receiver: rec.NodeKey, method: noticeInvoicesLow},
			notice: notice{method: noticeInvoicesLow, params: invoicesLowParams{
				Available: c.Available, Threshold: r.opts.LowThreshold,
			}},
			done: func(tx *holdstore.Tx) error {
				_, err := tx.SetInvoicesLow(rec.NodeKey, holdstore.LowOwed, holdstore.LowSent)
				return err
			},
		})
	}
	return hooks, nil
}

// warn logs a failure of the background work, unless it failed because the
// work is stopping.
func (r *Role) warn(ctx context.Context, msg string, args ...any) {
	if ctx.Err() == nil {
		r.log.Warn(msg, args...)
	}
}
