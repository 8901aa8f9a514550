package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	id := holdstore.ID(o.HoldID)
	f, ok := m.lookup(id)
	if !ok || f.receiverLSP != in.From || f.hash != o.PaymentHash {
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
	err := m.request(ctx, id, refusalEvent{done: done}, done)
	if errors.Is(err, errRunnerStopped) {
		// Resolved since (the refusal changes nothing), or stopping
		// (taken again after the restart).
		if !m.ready() {
			return errNotReady
		}
		return nil
	}
	return err
}

// HandleRelease takes a release relayed by a receiver LSP. A valid release
// for a HELD hold is committed (RELEASED, then FORWARDING) before this
// returns, which acknowledges it; the outbound payment follows. A forged,
// misdirected or mismatched release is dropped and logged, and its refusal
// told only as refuse allows. A replayed or
// late one (the hold is no longer HELD) changes nothing, and is answered
// with what became of the hold (answerStale). A release that finds no
// runner to take it while the hold may still be HELD (the role is starting
// or stopping) is redelivered later, never acknowledged and lost.
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
	id := holdstore.ID(rel.HoldID)
	f, ok := m.lookup(id)
	if !ok {
		return m.answerStale(ctx, in, rel)
	}

	// The receiver's signature authorizes the release: it names this
	// hold, its payment hash and this LSP, and carries the secret only this
	// LSP gave out. This goroutine checks it once the runner has the
	// release, while the runner writes it; the write commits only once the
	// check has passed. The relaying LSP's envelope is checked after
	// (HandleSelfAuthenticating).
	expect := onionmsg.ReleaseExpect{
		HoldID: rel.HoldID, PaymentHash: f.hash, ReleaseSecret: f.secret,
		SenderLSPKey: m.net.Self(), ReceiverKey: f.receiver,
	}
	now := m.clock.Now()
	v := newVerdict()
	done := make(chan error, 1)
	var found holdstore.State
	err := m.requestWhile(ctx, id, releaseEvent{rel: rel, verified: v, found: &found,
		done: done}, done, func() {
		v.decide(onionmsg.VerifyRelease(rel, expect, now, m.cfg.ReleaseClockSkew))
	})
	if verr := v.wait(); verr != nil {
		// Nothing was committed: the runner's write waited for this.
		return m.refuse(in, f, rel, found, verr)
	}
	switch {
	case errors.Is(err, errStaleRelease), errors.Is(err, errRunnerStopped):
		return m.answerStale(ctx, in, rel)
	case err != nil:
		return err // not committed: redelivered later
	}
	m.metrics.release(releaseAccepted)
	return nil
}

// errNotReady: the sender role cannot take a message yet (it is still
// resuming its holds) or any more (it is stopping). The message is
// redelivered after a delay, never acknowledged unhandled.
var errNotReady = bus.Later(time.Second, errors.New("sender role not ready for it"))

// ready reports whether the role is running, with a runner for every
// unresolved hold: only then does the absence of a runner say anything.
func (m *Manager) ready() bool {
	select {
	case <-m.running:
	default:
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ctx != nil && m.ctx.Err() == nil
}

// answerStale answers a release no runner took, from the store: for an
// unknown hold it is dropped; while the hold may still be HELD (no runner
// yet, or none any more) it is redelivered later; for a hold already
// released or finished it changes nothing and is answered with the hold's
// outcome (released, settled or canceled), sent before the release is
// acknowledged, so that the receiver LSP's mailbox item ends where the
// hold did. Only the hold's own receiver LSP is answered, and only for a
// release its receiver signed over this hold with its secret (whenever it
// was made): nobody learns anything from relaying junk.
func (m *Manager) answerStale(ctx context.Context, in *lspnet.Inbound,
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
	log := m.log.With("hold", h.ID.String(), "state", h.State)
	var status onionmsg.HoldStatus
	switch h.State {
	case holdstore.StateCreated, holdstore.StateHeld:
		// Not final: a runner takes it once there is one (the role is
		// starting or stopping) and the hold is HELD (a release may
		// overtake the sender's HTLC). Redelivered until then; the
		// hold's deadline bounds the wait.
		log.Info("release for a hold not ready for it: redelivered later")
		return errNotReady
	case holdstore.StateReleased, holdstore.StateForwarding:
		status = onionmsg.StatusReleased
	case holdstore.StateSettled:
		status = onionmsg.StatusSettled
	case holdstore.StateCanceled:
		status = onionmsg.StatusCanceled
	}
	m.metrics.release(releaseStale)
	receiverLSP := onionmsg.NodeKey(h.ReceiverLSP)
	if in.From != receiverLSP {
		log.Warn("release for a hold of another receiver LSP: ignored",
			"from", in.From.String())
		return nil
	}
	expect := onionmsg.ReleaseExpect{
		HoldID: rel.HoldID, PaymentHash: h.PaymentHash,
		ReleaseSecret: h.ReleaseSecret, SenderLSPKey: m.net.Self(),
		ReceiverKey: onionmsg.NodeKey(h.ReceiverKey),
	}
	// Checked as of its own creation: a stale release is still the
	// receiver's word on this hold.
	if err := onionmsg.VerifyRelease(rel, expect, rel.CreatedAt, 0); err != nil {
		log.Warn("release for a finished hold does not verify: ignored", "err", err)
		return nil
	}
	if err := in.Authentic(); err != nil {
		return err
	}
	o := &onionmsg.HoldOutcome{HoldID: rel.HoldID, PaymentHash: h.PaymentHash,
		Status: status, Reason: string(h.Reason)}
	if status == onionmsg.StatusReleased {
		o.Reason = ""
	}
	tctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	if err := m.net.Send(tctx, receiverLSP, o); err != nil {
		return fmt.Errorf("answering a stale release with the outcome: %w", err)
	}
	log.Info("release for a hold no longer held: answered with its outcome",
		"status", status)
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
// has passed (and nothing if it fails): HELD -> RELEASED and, in the same
// transaction, RELEASED -> FORWARDING (attempt 1) or, if it came too late to
// pay the receiver safely, RELEASED -> CANCELED. With every forwarding slot
// taken, only RELEASED is committed (queued): the release is durable and
// acknowledged, and the attempt begins once a slot frees (startForwarding).
// send reports whether the outbound payment is to be sent now, with its
// CLTV limit: the caller answers the release handler first, so the message
// is acknowledged as soon as the release is durable.
func (r *runner) release(ctx context.Context, v *verdict) (send, queued bool, limit uint32, err error) {
	if r.hold.State != holdstore.StateHeld {
		return false, false, 0, errStaleRelease
	}
	// No payout unless lnd still holds the sender's HTLCs: a parked hold
	// learns of lnd's cancel from an HTLC event, which may still be on
	// its way, or may have been lost while asynclspd was down. Asked while
	// the signature check runs; not canceled, nothing is committed and the
	// release is redelivered.
	if err := r.confirmHeld(ctx); err != nil {
		return false, false, 0, err
	}
	if r.hold.State != holdstore.StateHeld {
		return false, false, 0, errStaleRelease
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
	trs := []holdstore.Transition{released, next}
	if next.To == holdstore.StateForwarding && !r.trySlot() {
		trs, queued = trs[:1], true
	}
	if err := r.write(ctx, v, trs...); err != nil {
		r.freeSlot()
		return false, false, 0, err
	}
	r.releasedAt = now
	if next.To != holdstore.StateForwarding || queued {
		r.logTransitions()
	}
	if queued {
		r.log.Info("release queued for a forwarding slot")
		return false, true, 0, nil
	}
	if next.To != holdstore.StateForwarding {
		return false, false, 0, nil
	}
	return true, false, limit, nil
}

// verdict is the outcome of a check that another goroutine makes.
type verdict struct {
	done chan struct{}
	err  error
}

func newVerdict() *verdict { return &verdict{done: make(chan struct{})} }

// decide records the check's outcome; it is called once.
func (v *verdict) decide(err error) {
	v.err = err
	close(v.done)
}

// wait returns the check's outcome once it is decided.
func (v *verdict) wait() error {
	<-v.done
	return v.err
}
