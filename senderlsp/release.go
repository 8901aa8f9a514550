package senderlsp

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// Register routes the sender role's inbound messages on mux: releases, and
// the hold_outcome a receiver LSP sends when it refuses a hold.
func (m *Manager) Register(mux *lspnet.Mux) {
	// A release is signed end to end by the receiver: it is acted on
	// without waiting for the relaying LSP's envelope check (which still
	// drops and counts a bad envelope).
	mux.HandleSelfAuthenticating(onionmsg.TypeReleaseHeldHTLC, m.HandleRelease)
	mux.HandleMessage(onionmsg.TypeHoldOutcome, m.handleRefusal)
}

// handleRefusal takes a receiver LSP's refusal of a hold (its receiver's
// mailbox is full): a hold not yet released is canceled at once
// (receiver_rejected) rather than held to its deadline. An outcome about a
// hold this role does not hold for that LSP is not ours (ErrNotMine): the
// receiver role of the same daemon may own it.
func (m *Manager) handleRefusal(ctx context.Context, in *lspnet.Inbound) error {
	o, ok := in.Msg.(*onionmsg.HoldOutcome)
	if !ok {
		return lspnet.Drop(bus.ReasonMalformed, fmt.Errorf("not an outcome: %T", in.Msg))
	}
	r := m.runner(holdstore.ID(o.HoldID))
	if r == nil || r.fixed.receiverLSP != in.From || r.fixed.hash != o.PaymentHash {
		return lspnet.ErrNotMine
	}
	if err := in.Authentic(); err != nil {
		return err
	}
	log := m.log.With("hold", o.HoldID.String(), "from", in.From.String())
	if o.Status != onionmsg.StatusRejected {
		log.Warn("receiver LSP sent an outcome other than a refusal", "status", o.Status)
		return nil
	}
	log.Warn("receiver LSP refused the hold", "reason", o.Reason)
	done := make(chan error, 1)
	err := r.request(ctx, refusalEvent{done: done}, done)
	if errors.Is(err, errStaleRelease) {
		return nil
	}
	return err
}

// HandleRelease takes a release relayed by a receiver LSP. A valid release
// for a HELD hold is committed (RELEASED, then FORWARDING) before this
// returns, which acknowledges it; the outbound payment follows. A forged,
// misdirected or mismatched release is dropped and logged; a replayed or
// late one (the hold is no longer HELD) is acknowledged and changes nothing
// (invariant 7).
func (m *Manager) HandleRelease(ctx context.Context, in *lspnet.Inbound) error {
	rel, ok := in.Msg.(*onionmsg.ReleaseHeldHTLC)
	if !ok {
		return lspnet.Drop(bus.ReasonMalformed, fmt.Errorf("not a release: %T", in.Msg))
	}
	log := m.log.With("hold", rel.HoldID.String(), "from", in.From.String())
	if rel.SenderLSPKey != m.net.Self() {
		m.metrics.release(releaseRejected)
		log.Warn("release for another sender LSP", "sender_lsp", rel.SenderLSPKey)
		return lspnet.Drop(bus.ReasonMisdirected, onionmsg.ErrMisdirected)
	}
	r := m.runner(holdstore.ID(rel.HoldID))
	if r == nil {
		return m.releaseWithoutRunner(ctx, in, rel)
	}

	// The receiver's signature authorizes the release: it names this
	// hold, its payment hash and this LSP, and carries the secret only this
	// LSP gave out. It is checked while the runner writes the release,
	// which commits only once the check has passed; the relaying LSP's
	// envelope is checked after (HandleSelfAuthenticating).
	f := r.fixed
	expect := onionmsg.ReleaseExpect{
		HoldID: rel.HoldID, PaymentHash: f.hash, ReleaseSecret: f.secret,
		SenderLSPKey: m.net.Self(), ReceiverKey: f.receiver,
	}
	now := m.clock.Now()
	v := check(func() error {
		return onionmsg.VerifyRelease(rel, expect, now, m.cfg.ReleaseClockSkew)
	})
	done := make(chan error, 1)
	err := r.request(ctx, releaseEvent{verified: v, done: done}, done)
	if verr := v.wait(); verr != nil {
		// Nothing was committed: the runner's write waited for this.
		m.metrics.release(releaseRejected)
		log.Warn("release refused", "err", verr)
		r.tell(onionmsg.StatusRejected, holdstore.Reason(rejectCode(verr)))
		return lspnet.Drop(bus.ReasonBadSignature, verr)
	}
	switch {
	case errors.Is(err, errStaleRelease):
		m.metrics.release(releaseStale)
		log.Info("release for a hold that is no longer held: ignored")
		return nil
	case err != nil:
		return err // not committed: redelivered later
	}
	m.metrics.release(releaseAccepted)
	return nil
}

// releaseWithoutRunner answers a release for a hold no runner owns: unknown
// (dropped), or finished (a replay: acknowledged, nothing changes).
func (m *Manager) releaseWithoutRunner(ctx context.Context, in *lspnet.Inbound,
	rel *onionmsg.ReleaseHeldHTLC) error {

	h, err := m.store.Get(ctx, holdstore.ID(rel.HoldID))
	if errors.Is(err, holdstore.ErrNotFound) {
		m.metrics.release(releaseRejected)
		m.log.Warn("release for an unknown hold", "hold", rel.HoldID.String())
		return lspnet.Drop(bus.ReasonMisdirected, err)
	}
	if err != nil {
		return err
	}
	m.metrics.release(releaseStale)
	m.log.Info("release for a finished hold: ignored", "hold", h.ID.String(),
		"state", h.State)
	return nil
}

// rejectCode is the reason a receiver is told its release was refused.
func rejectCode(err error) string {
	switch {
	case errors.Is(err, onionmsg.ErrExpired):
		return "release_expired"
	case errors.Is(err, onionmsg.ErrFromFuture):
		return "release_from_future"
	case errors.Is(err, onionmsg.ErrSecretMismatch):
		return "wrong_release_secret"
	case errors.Is(err, onionmsg.ErrWrongKey), errors.Is(err, onionmsg.ErrBadSignature):
		return "bad_signature"
	}
	return "invalid_release"
}

// release, in the runner, commits a release once v, its signature check,
// has passed (and nothing if it fails): HELD -> RELEASED and,
// in the same transaction, RELEASED -> FORWARDING (attempt 1) or, if it came
// too late to pay the receiver safely, RELEASED -> CANCELED. send reports
// whether the outbound payment is to be sent now, with its CLTV limit: the
// caller answers the release handler first, so the message is acknowledged
// as soon as the release is durable.
func (r *runner) release(ctx context.Context, v *verdict) (send bool, limit uint32, err error) {
	if r.hold.State != holdstore.StateHeld {
		return false, 0, errStaleRelease
	}
	h, cfg := r.hold, &r.m.cfg
	now := r.m.clock.Now()
	released := r.to(holdstore.StateReleased, holdstore.ReasonNone)
	next := holdstore.Transition{ID: h.ID, From: holdstore.StateReleased,
		To: holdstore.StateForwarding}
	limit, ok := cfg.CltvLimit(h.IncomingExpiry, r.m.height.Load())
	switch {
	case !ok:
		next.To, next.Reason = holdstore.StateCanceled, holdstore.ReasonReleasedTooLate
	case !now.Before(h.ReceiverInvoiceExpiry.Add(-cfg.InvoiceExpiryMargin)):
		next.To, next.Reason = holdstore.StateCanceled, holdstore.ReasonReceiverInvoiceExpired
	}
	if err := r.applyIf(ctx, v, released, next); err != nil {
		return false, 0, err
	}
	if next.To != holdstore.StateForwarding {
		return false, 0, nil
	}
	r.releasedAt = now
	return true, limit, nil
}

// verdict is the outcome of a check running in its own goroutine.
type verdict struct {
	done chan struct{}
	err  error
}

// check starts f and returns its verdict.
func check(f func() error) *verdict {
	v := &verdict{done: make(chan struct{})}
	go func() {
		defer close(v.done)
		v.err = f()
	}()
	return v
}

// wait returns f's error once f has returned.
func (v *verdict) wait() error {
	<-v.done
	return v.err
}
