package receiverlsp

import (
	"context"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/routing/route"
)

// hookKey names one kind of webhook to one receiver: the unit of cooldown.
type hookKey struct {
	receiver route.Vertex
	method   string
}

// hook is one webhook to deliver, and what to record once it is done with
// (delivered, or given up on).
type hook struct {
	key  hookKey
	url  string
	body []byte
	done func(tx *holdstore.Tx) error
}

// delivered is a hook's end, reported to Run.
type delivered struct {
	hook *hook
	err  error
}

// worker is Run's state; only Run's goroutine touches it.
type worker struct {
	lastSent  map[hookKey]time.Time
	inFlight  map[hookKey]bool
	results   chan delivered
	wg        sync.WaitGroup
	lastSweep time.Time
}

// Run does the role's background work until ctx ends: it expires mailbox
// items past their deadline, sends the webhooks owed (payment_incoming,
// expiry_soon, invoices_low; each one at most once per cooldown per
// receiver, later ones coalesced), and relays recorded releases that did
// not reach the bus. Everything it does is driven by what is stored, so a
// restart picks up where it stopped. It returns nil once its deliveries
// have stopped.
func (r *Role) Run(ctx context.Context) error {
	w := &worker{
		lastSent: map[hookKey]time.Time{},
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
	for k, at := range w.lastSent {
		if !w.inFlight[k] && now.Sub(at) >= r.opts.Webhook.Cooldown {
			delete(w.lastSent, k)
		}
	}
	for _, h := range hooks {
		if h.url == "" {
			// The receiver dropped its webhook: nothing to send.
			if err := r.store.Update(ctx, h.done); err != nil {
				r.warn(ctx, "cannot record webhook", "err", err)
			}
			continue
		}
		if w.inFlight[h.key] {
			continue
		}
		if len(w.inFlight) >= r.opts.Webhook.MaxInFlight {
			break
		}
		if last, ok := w.lastSent[h.key]; ok {
			if wait := last.Add(r.opts.Webhook.Cooldown).Sub(now); wait > 0 {
				next = min(next, wait)
				continue
			}
		}
		w.lastSent[h.key] = now
		w.inFlight[h.key] = true
		w.wg.Go(func() {
			err := r.deliver(ctx, h.url, h.body)
			select {
			case w.results <- delivered{h, err}:
			case <-ctx.Done():
			}
		})
	}
	return max(next, time.Millisecond)
}

// finish records that a webhook is done with. One that failed for good is
// given up on: a wake-up is worth a few tries, not a queue that grows.
func (r *Role) finish(ctx context.Context, w *worker, d delivered) {
	delete(w.inFlight, d.hook.key)
	log := r.log.With("receiver", nodeKey(d.hook.key.receiver),
		"method", d.hook.key.method)
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

// hooksOwed reads the webhooks the stored state owes.
func (r *Role) hooksOwed(ctx context.Context, now time.Time, height uint32) ([]*hook, error) {
	var hooks []*hook
	wakes, err := r.store.WakesOwed(ctx)
	if err != nil {
		return nil, err
	}
	for _, wk := range wakes {
		hooks = append(hooks, &hook{
			key:  hookKey{wk.Receiver, client.MethodPaymentIncoming},
			url:  wk.WebhookURL,
			body: notification(client.MethodPaymentIncoming, nil),
			done: func(tx *holdstore.Tx) error { return tx.MarkWoken(wk.Receiver, wk.Newest) },
		})
	}

	soonHeight := uint32(0)
	if height > 0 {
		soonHeight = height + r.opts.Webhook.ExpirySoonBlocks
	}
	soon, err := r.store.ExpiringSoon(ctx, now.Add(r.opts.Webhook.ExpirySoon), soonHeight)
	if err != nil {
		return nil, err
	}
	byReceiver := map[route.Vertex][]*holdstore.MailboxItem{}
	for _, it := range soon {
		byReceiver[it.ReceiverKey] = append(byReceiver[it.ReceiverKey], it)
	}
	for key, items := range byReceiver {
		rec, err := r.store.Receiver(ctx, key)
		if err != nil {
			return nil, err
		}
		timeout := items[0].DeadlineHeight
		for _, it := range items {
			timeout = min(timeout, it.DeadlineHeight)
		}
		hooks = append(hooks, &hook{
			key:  hookKey{key, client.MethodExpirySoon},
			url:  rec.WebhookURL,
			body: notification(client.MethodExpirySoon, client.ExpirySoonParams{Timeout: timeout}),
			done: func(tx *holdstore.Tx) error { return tx.MarkWarned(items) },
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
			key: hookKey{rec.NodeKey, client.MethodInvoicesLow},
			url: rec.WebhookURL,
			body: notification(client.MethodInvoicesLow, client.InvoicesLowParams{
				Available: c.Available, Threshold: r.opts.LowThreshold,
			}),
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
