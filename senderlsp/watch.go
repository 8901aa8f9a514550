package senderlsp

import (
	"context"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/lntypes"
)

// reconcilePage is how many pending invoices one ListPendingInvoices asks
// lnd for: 10,000 held payments are 10 calls.
const reconcilePage = 1000

// watchHTLCs follows lnd's HTLC events on one stream for every held
// payment: a parked HELD hold has no stream of its own. When lnd fails
// back an HTLC a hold holds (the hold invoice was canceled by hand, or by
// lnd's own expiry), the hold is woken to ask lnd and cancel. The stream
// has no backlog, so every (re)subscription is followed by a reconcile
// against lnd's pending invoices.
func (m *Manager) watchHTLCs(ctx context.Context) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		sub, err := m.lnd.SubscribeHtlcEvents(ctx)
		if err == nil {
			attempt = 0
			for ev := range sub.Updates() {
				m.onHTLCEvent(ev)
			}
			err = sub.Err()
			sub.Close()
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("HTLC event subscription ended, subscribing again", "err", err)
		// What happens until the next subscription is not reported.
		m.kickReconcile()
		if !sleep(ctx, m.clock, backoff(attempt)) {
			return
		}
	}
}

func (m *Manager) onHTLCEvent(ev lnd.HtlcEvent) {
	switch ev.Kind {
	case lnd.HtlcSubscribed, lnd.HtlcResubscribed:
		m.kickReconcile()
	case lnd.HtlcLinkFailed, lnd.HtlcFinalFailed:
		m.mu.Lock()
		id, ok := m.circuits[ev.Circuit]
		if !ok {
			m.failedCircuits.add(ev.Circuit)
		}
		m.mu.Unlock()
		if ok {
			m.log.Info("lnd failed back a held HTLC", "hold", id.String(),
				"detail", ev.FailureDetail)
			m.recheck(id)
		}
	}
}

func (m *Manager) kickReconcile() {
	select {
	case m.reconcileKick <- struct{}{}:
	default:
	}
}

// reconcileLoop runs a reconcile when kicked (a new HTLC event stream) and
// every ReconcileInterval, on the injected clock.
func (m *Manager) reconcileLoop(ctx context.Context) {
	tick := m.clock.TickAfter(m.cfg.ReconcileInterval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.reconcileKick:
		case <-tick:
			tick = m.clock.TickAfter(m.cfg.ReconcileInterval)
		}
		for attempt := 0; ; attempt++ {
			err := m.reconcile(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			m.log.Warn("reconciling the holds with lnd failed, retrying",
				"attempt", attempt+1, "err", err)
			if !sleep(ctx, m.clock, backoff(attempt)) {
				return
			}
		}
	}
}

// reconcile compares the tracked holds with lnd's pending invoices, a
// thousand a call: a hold whose invoice lnd holds ACCEPTED has its HTLCs
// recorded (and is tracked again after a restart); any other is woken to
// ask lnd about its own invoice and act (a CREATED hold's runner follows
// its invoice anyway and ignores it). Runners that run are left alone:
// they are doing something, and a HELD one asks lnd before a payout.
func (m *Manager) reconcile(ctx context.Context) error {
	m.mu.Lock()
	byHash := make(map[lntypes.Hash]holdstore.ID, len(m.holds))
	for id, t := range m.holds {
		if t.r == nil {
			byHash[t.fixed.hash] = id
		}
	}
	m.mu.Unlock()

	var after uint64
	for {
		page, err := m.lnd.ListPendingInvoices(ctx, after, reconcilePage)
		if err != nil {
			return err
		}
		for _, inv := range page {
			id, ok := byHash[inv.Hash]
			if !ok || inv.State != lnd.InvoiceAccepted {
				continue
			}
			delete(byHash, inv.Hash)
			if m.watchCircuits(id, inv) {
				m.recheck(id)
			}
		}
		if len(page) < reconcilePage {
			break
		}
		after = page[len(page)-1].AddIndex
	}
	for _, id := range byHash {
		m.recheck(id)
	}
	m.mu.Lock()
	m.reconciled = true
	if m.untracked == 0 {
		m.closeTracked()
	}
	m.mu.Unlock()
	return nil
}
