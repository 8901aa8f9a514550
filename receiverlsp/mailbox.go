package receiverlsp

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// Reasons this LSP gives (in hold_outcome and on mailbox items).
const (
	// ReasonMailboxFull: the receiver's mailbox, or the sender LSP's share
	// of it, is full; the sender LSP should cancel the hold at once.
	ReasonMailboxFull = "mailbox_full"

	// ReasonDeadline: the deadline passed without a release.
	ReasonDeadline = "deadline_passed"

	// ReasonCanceled: the sender LSP canceled without saying why.
	ReasonCanceled = "canceled"

	// ReasonRejected: the sender LSP refused a release without saying why.
	ReasonRejected = "release_rejected"
)

// admission is what became of a held_htlc_available.
type admission int

const (
	admitted   admission = iota // stored as pending: wake the receiver
	refused                     // stored as refused: tell the sender LSP
	duplicate                   // seen before, and not refused: nothing to do
	expiredOn                   // stored, but its deadline had passed
	endedFirst                  // stored final: its outcome came first
)

// errNoReservation: a held_htlc_available that matches no invoice reserved
// for its sender LSP and hold; it can never be admitted.
var errNoReservation = errors.New("no invoice reserved for this hold")

// handleHeld stores a held_htlc_available in its receiver's mailbox, or
// refuses it (and tells the sender LSP) when the mailbox is full. A
// redelivery changes nothing.
func (r *Role) handleHeld(ctx context.Context, in *lspnet.Inbound) error {
	m, ok := in.Msg.(*onionmsg.HeldHTLCAvailable)
	if !ok {
		return lspnet.Drop(bus.ReasonMalformed, fmt.Errorf("%T on the "+
			"held_htlc_available subject", in.Msg))
	}
	if err := in.Authentic(); err != nil {
		return err
	}
	return r.acceptHeld(ctx, in.From, m)
}

// acceptHeld handles an authentic held_htlc_available from the sender LSP
// from: admitted, refused (and the sender LSP told), or dropped if it
// matches no reservation.
func (r *Role) acceptHeld(ctx context.Context, from onionmsg.NodeKey,
	m *onionmsg.HeldHTLCAvailable) error {

	if m.SenderLSPKey != from {
		return lspnet.Drop(bus.ReasonMisdirected, fmt.Errorf("held_htlc_"+
			"available from %s names sender LSP %s", from, m.SenderLSPKey))
	}
	adm, err := r.admit(ctx, m)
	if errors.Is(err, errNoReservation) {
		return lspnet.Drop(bus.ReasonMalformed, err)
	}
	if err != nil {
		return err
	}
	log := r.log.With("hold", m.HoldID, "sender_lsp", from,
		"receiver", m.ReceiverKey)
	switch adm {
	case admitted:
		log.Info("hold in mailbox", "amount_msat", m.Amount,
			"deadline_height", m.DeadlineHeight, "deadline_time", m.DeadlineTime)
		r.kick()
	case expiredOn:
		log.Warn("hold arrived after its deadline")
	case endedFirst:
		log.Info("hold arrived after its outcome: stored final, never pending")
	case refused:
		log.Warn("mailbox full: hold refused")
		// Recorded first, so a redelivery sends this again.
		return r.msgr.Send(ctx, from, &onionmsg.HoldOutcome{
			HoldID: m.HoldID, PaymentHash: m.PaymentHash,
			Status: onionmsg.StatusRejected, Reason: ReasonMailboxFull,
		})
	}
	return nil
}

// admit stores m in its receiver's mailbox in one transaction, after
// checking it against the invoice reserved for its sender LSP and hold, and
// the mailbox limits.
func (r *Role) admit(ctx context.Context, m *onionmsg.HeldHTLCAvailable) (admission, error) {
	var (
		adm      admission
		sender   = vertex(m.SenderLSPKey)
		receiver = vertex(m.ReceiverKey)
		hold     = holdstore.ID(m.HoldID)
	)
	err := r.store.Update(ctx, func(tx *holdstore.Tx) error {
		old, err := tx.MailboxItem(sender, hold)
		switch {
		case err == nil:
			if old.PaymentHash != m.PaymentHash || old.ReceiverKey != receiver ||
				old.ReleaseSecret != m.ReleaseSecret {
				return fmt.Errorf("%w: hold %s is in the mailbox with "+
					"other details", errNoReservation, m.HoldID)
			}
			adm = duplicate
			if old.State == holdstore.MailboxRefused {
				adm = refused
			}
			return nil
		case !errors.Is(err, holdstore.ErrItemNotFound):
			return err
		}
		inv, err := tx.Reserved(sender, hold)
		switch {
		case errors.Is(err, holdstore.ErrNoInvoice):
			return fmt.Errorf("%w: hold %s", errNoReservation, m.HoldID)
		case err != nil:
			return err
		case inv.PaymentHash != m.PaymentHash, inv.ReceiverKey != receiver,
			inv.Reservation.AmountMsat != m.Amount:
			return fmt.Errorf("%w: hold %s names another payment hash, "+
				"receiver or amount than its invoice", errNoReservation, m.HoldID)
		}
		// A receiver without a webhook is owed no wake-up for it.
		hooked, err := tx.HasWebhooks(receiver)
		if err != nil {
			return err
		}
		it := &holdstore.MailboxItem{
			SenderLSP: sender, HoldID: hold, ReceiverKey: receiver,
			PaymentHash: m.PaymentHash, AmountMsat: m.Amount,
			DeadlineHeight: m.DeadlineHeight, DeadlineTime: m.DeadlineTime,
			ReleaseSecret: m.ReleaseSecret, State: holdstore.MailboxPending,
			Woken: !hooked, Warned: !hooked,
		}
		adm = admitted
		ts, err := tx.TakeTombstone(sender, hold)
		switch {
		case err == nil && ts.PaymentHash == m.PaymentHash:
			// The sender LSP's final word came first (a crash reordered
			// the two): the item starts where the hold ended.
			adm, it.State, it.Reason = endedFirst, ts.State, ts.Reason
		case err == nil:
			return fmt.Errorf("%w: hold %s ended with another payment hash",
				errNoReservation, m.HoldID)
		case !errors.Is(err, holdstore.ErrNoTombstone):
			return err
		case !m.DeadlineTime.After(tx.Now()):
			adm, it.State, it.Reason = expiredOn, holdstore.MailboxExpired, ReasonDeadline
		default:
			full, err := r.full(tx, it)
			if err != nil {
				return err
			}
			if full {
				adm, it.State, it.Reason = refused, holdstore.MailboxRefused, ReasonMailboxFull
			}
		}
		if adm != admitted {
			it.Woken, it.Warned = true, true
		}
		return tx.AddMailboxItem(it)
	})
	return adm, err
}

// full reports whether the receiver's mailbox, or the sender LSP's share of
// it, has no room for it.
func (r *Role) full(tx *holdstore.Tx, it *holdstore.MailboxItem) (bool, error) {
	n, err := tx.CountPending(it.ReceiverKey, nil)
	if err != nil || n >= r.opts.MaxPendingPerReceiver {
		return true, err
	}
	n, err = tx.CountPending(it.ReceiverKey, &it.SenderLSP)
	return n >= r.opts.MaxPendingPerSender, err
}

// handleOutcome records what the sender LSP says became of a hold.
func (r *Role) handleOutcome(ctx context.Context, in *lspnet.Inbound) error {
	m, ok := in.Msg.(*onionmsg.HoldOutcome)
	if !ok {
		return lspnet.Drop(bus.ReasonMalformed, fmt.Errorf("%T on the "+
			"hold_outcome subject", in.Msg))
	}
	if err := in.Authentic(); err != nil {
		return err
	}
	return r.applyOutcome(ctx, in.From, m)
}

// applyOutcome records an authentic hold_outcome from the sender LSP from.
func (r *Role) applyOutcome(ctx context.Context, from onionmsg.NodeKey,
	m *onionmsg.HoldOutcome) error {

	var (
		changed *holdstore.MailboxItem
		kept    bool
	)
	err := r.store.Update(ctx, func(tx *holdstore.Tx) error {
		changed, kept = nil, false
		it, err := tx.MailboxItem(vertex(from), holdstore.ID(m.HoldID))
		if errors.Is(err, holdstore.ErrItemNotFound) {
			kept, err = keepTombstone(tx, from, m)
		}
		if err != nil || kept {
			return err
		}
		if it.PaymentHash != m.PaymentHash {
			return errHashMismatch
		}
		to, reason, ok := afterOutcome(it, m)
		if !ok {
			return nil
		}
		if m.Status == onionmsg.StatusReleased || m.Status == onionmsg.StatusSettled {
			// The sender LSP has the release: stop relaying it.
			if err := tx.MarkRelayed(it.SenderLSP, it.HoldID, it.Release); err != nil {
				return err
			}
		}
		err = tx.ChangeMailboxItem(holdstore.MailboxChange{
			SenderLSP: it.SenderLSP, HoldID: it.HoldID,
			From: it.State, To: to, Reason: reason,
		})
		it.State, it.Reason = to, reason
		changed = it
		return err
	})
	switch {
	case errors.Is(err, holdstore.ErrItemNotFound):
		// Not a hold this receiver LSP reserved an invoice for (maybe
		// one the sender role of this daemon holds): not ours; dropped
		// if no one's.
		return fmt.Errorf("%w: hold_outcome for hold %s, which is not in "+
			"any mailbox", lspnet.ErrNotMine, m.HoldID)
	case errors.Is(err, errHashMismatch):
		return lspnet.Drop(bus.ReasonMalformed, fmt.Errorf("hold_outcome "+
			"for hold %s: %w", m.HoldID, err))
	case err != nil:
		return err
	}
	if kept {
		r.log.Info("hold outcome before its held_htlc_available: kept",
			"hold", m.HoldID, "sender_lsp", from, "status", m.Status,
			"reason", m.Reason)
	}
	if changed != nil {
		r.log.Info("hold outcome", "hold", m.HoldID, "sender_lsp", from,
			"receiver", nodeKey(changed.ReceiverKey), "status", m.Status,
			"reason", m.Reason, "state", changed.State)
		r.changed.notify(changed.SenderLSP, changed.HoldID)
	}
	return nil
}

var errHashMismatch = errors.New("payment hash does not match the mailbox item")

// keepTombstone keeps a final outcome (settled, canceled) of a hold that is
// in no mailbox yet: its held_htlc_available may still come (redelivered
// after a crash), and must then be stored final, not pending. Kept only for
// a hold this LSP reserved an invoice for, with that invoice's payment hash;
// anything else is not ours (holdstore.ErrItemNotFound).
func keepTombstone(tx *holdstore.Tx, from onionmsg.NodeKey,
	m *onionmsg.HoldOutcome) (bool, error) {

	var state holdstore.MailboxState
	switch m.Status {
	case onionmsg.StatusSettled:
		state = holdstore.MailboxSettled
	case onionmsg.StatusCanceled:
		state = holdstore.MailboxCanceled
	default:
		return false, holdstore.ErrItemNotFound
	}
	inv, err := tx.Reserved(vertex(from), holdstore.ID(m.HoldID))
	switch {
	case errors.Is(err, holdstore.ErrNoInvoice):
		return false, holdstore.ErrItemNotFound
	case err != nil:
		return false, err
	case inv.PaymentHash != m.PaymentHash:
		return false, errHashMismatch
	}
	reason := ""
	if state == holdstore.MailboxCanceled {
		reason = orDefault(m.Reason, ReasonCanceled)
	}
	return true, tx.AddTombstone(&holdstore.Tombstone{
		SenderLSP: vertex(from), HoldID: holdstore.ID(m.HoldID),
		PaymentHash: m.PaymentHash, State: state, Reason: reason,
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
