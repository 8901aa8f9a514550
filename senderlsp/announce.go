package senderlsp

import (
	"context"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/routing/route"
)

const (
	// announcePage is how many unannounced holds a sweep reads at once.
	announcePage = 64
	// announceInFlight bounds the announcements awaiting their PubAck.
	announceInFlight = 16
)

// announceLoop tells receiver LSPs of their held payments: one goroutine
// for every hold of the role. It sweeps the HELD holds whose
// held_htlc_available no receiver LSP has acknowledged (the store's
// partial index), sends them a few at a time, and records each PubAck
// (MarkAnnounced), so a restart sends only what was never stored. A hold
// that becomes HELD kicks it; a receiver LSP that fails is retried after a
// backoff on the injected clock, without holding up the others. A late
// announcement of a hold that left HELD is harmless: the receiver LSP
// stores it idempotently, and a release for it is answered from the store.
func (m *Manager) announceLoop(ctx context.Context) {
	a := &announcer{m: m, waits: map[onionmsg.NodeKey]*lspBackoff{}}
	for {
		retry := a.sweep(ctx)
		var timer <-chan time.Time
		if retry > 0 {
			timer = m.clock.TickAfter(retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.announceKick:
		case <-timer:
		}
	}
}

// Reannounce announces again the HELD holds whose receiver LSP is lsp, as
// if it had never acknowledged them: for an operator whose receiver LSP lost
// its stored messages. It returns how many holds will be announced.
func (m *Manager) Reannounce(ctx context.Context, lsp onionmsg.NodeKey) (int, error) {
	n, err := m.store.ClearAnnounced(ctx, route.Vertex(lsp))
	if err != nil {
		return 0, err
	}
	m.log.Info("announcing held payments again", "receiver_lsp", lsp.String(), "holds", n)
	m.kickAnnounce()
	return n, nil
}

// kickAnnounce asks for a sweep: a hold became HELD.
func (m *Manager) kickAnnounce() {
	select {
	case m.announceKick <- struct{}{}:
	default:
	}
}

type announcer struct {
	m     *Manager
	waits map[onionmsg.NodeKey]*lspBackoff
}

// lspBackoff is a receiver LSP that failed to store an announcement: not
// tried again before until.
type lspBackoff struct {
	attempt int
	until   time.Time
}

// sweep sends every unannounced hold whose receiver LSP is not backing
// off, and returns how long until the first backoff ends (0: none).
func (a *announcer) sweep(ctx context.Context) time.Duration {
	m := a.m
	for cursor := ""; ctx.Err() == nil; {
		page, err := m.store.Unannounced(ctx, cursor, announcePage)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("reading the holds to announce failed", "err", err)
			}
			return backoff(0)
		}
		a.send(ctx, page.Holds)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	var next time.Duration
	now := m.clock.Now()
	for _, w := range a.waits {
		d := max(w.until.Sub(now), time.Millisecond)
		if next == 0 || d < next {
			next = d
		}
	}
	return next
}

// send announces holds, announceInFlight at a time, and records the ones
// stored.
func (a *announcer) send(ctx context.Context, holds []*holdstore.Hold) {
	m := a.m
	now := m.clock.Now()
	var (
		mu     sync.Mutex
		stored []holdstore.ID
		failed = map[onionmsg.NodeKey]error{}
		tried  = map[onionmsg.NodeKey]bool{}
		wg     sync.WaitGroup
		slots  = make(chan struct{}, announceInFlight)
	)
	for _, h := range holds {
		lsp := onionmsg.NodeKey(h.ReceiverLSP)
		if w := a.waits[lsp]; w != nil && now.Before(w.until) {
			continue
		}
		tried[lsp] = true
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			sctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
			err := m.net.Send(sctx, lsp, m.announcement(h))
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				m.metrics.announced("failed")
				failed[lsp] = err
				return
			}
			m.metrics.announced("stored")
			stored = append(stored, h.ID)
		}()
	}
	wg.Wait()
	if len(stored) > 0 {
		if err := m.store.MarkAnnounced(ctx, stored...); err != nil && ctx.Err() == nil {
			// Sent again by a later sweep: harmless.
			m.log.Warn("recording announcements failed", "err", err)
		}
	}
	if ctx.Err() != nil {
		return
	}
	for lsp := range tried {
		err, bad := failed[lsp]
		if !bad {
			delete(a.waits, lsp)
			continue
		}
		w := a.waits[lsp]
		if w == nil {
			w = &lspBackoff{}
			a.waits[lsp] = w
		}
		w.until = m.clock.Now().Add(backoff(w.attempt))
		w.attempt++
		m.log.Warn("telling a receiver LSP of held payments failed, retrying",
			"receiver_lsp", lsp.String(), "attempt", w.attempt, "err", err)
	}
}

// announcement is the held_htlc_available of a HELD hold.
func (m *Manager) announcement(h *holdstore.Hold) *onionmsg.HeldHTLCAvailable {
	return &onionmsg.HeldHTLCAvailable{
		HoldID:         onionmsg.HoldID(h.ID),
		PaymentHash:    h.PaymentHash,
		Amount:         h.AmountMsat,
		DeadlineHeight: h.DeadlineHeight,
		DeadlineTime:   h.DeadlineTime,
		SenderLSPKey:   m.net.Self(),
		ReceiverKey:    onionmsg.NodeKey(h.ReceiverKey),
		ReleaseSecret:  h.ReleaseSecret,
	}
}
