package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Transition moves one hold from one state to another: a compare-and-set on
// the current state, with the fields that go with the new state, and one
// appended event.
type Transition struct {
	ID   ID
	From State
	To   State

	// Reason records a failure. Required when To is CANCELED; with
	// FORWARDING -> FORWARDING it records why the previous attempt failed.
	// The hold keeps the most specific reason it was ever given.
	Reason Reason

	// IncomingExpiry and DeadlineHeight are required with HELD.
	IncomingExpiry uint32
	DeadlineHeight uint32

	// Preimage is required with SETTLED, and must hash to the hold's
	// payment hash. OutboundFeeMsat is what the outbound payment cost.
	Preimage        *lntypes.Preimage
	OutboundFeeMsat lnwire.MilliSatoshi

	// Resolved, with a final state, says lnd has already done what the
	// state asks (recovery found the invoice settled or canceled).
	Resolved bool
}

func (t *Transition) validate() error {
	if err := checkLegal(t.From, t.To); err != nil {
		return err
	}
	if t.Reason != ReasonNone && !t.Reason.Valid() {
		return fmt.Errorf("%w: unknown reason %q", ErrInvalid, t.Reason)
	}
	switch t.To {
	case StateCreated:
		return fmt.Errorf("%w: holds are created with Create", ErrInvalid)
	case StateHeld:
		if t.IncomingExpiry == 0 || t.DeadlineHeight == 0 ||
			t.DeadlineHeight >= t.IncomingExpiry {
			return fmt.Errorf("%w: HELD needs an incoming expiry above "+
				"its deadline height (got %d and %d)", ErrInvalid,
				t.IncomingExpiry, t.DeadlineHeight)
		}
	case StateSettled:
		if t.Preimage == nil {
			return fmt.Errorf("%w: SETTLED needs the preimage", ErrInvalid)
		}
	case StateCanceled:
		if t.Reason == ReasonNone {
			return fmt.Errorf("%w: CANCELED needs a reason", ErrInvalid)
		}
	}
	if t.Resolved && !t.To.Final() {
		return fmt.Errorf("%w: only a final state can be resolved", ErrInvalid)
	}
	return nil
}

// Create stores a new hold in state CREATED and appends its first event.
// A second hold for the same payment hash, or the same owner and request
// key, is refused with ErrDuplicate.
func (s *Store) Create(ctx context.Context, h *Hold) (Event, error) {
	if err := h.validate(); err != nil {
		return Event{}, err
	}
	var ev Event
	err := s.Update(ctx, func(tx *Tx) error {
		var err error
		ev, err = tx.Create(h)
		return err
	})
	return ev, err
}

// Create is Store.Create inside a transaction.
func (tx *Tx) Create(h *Hold) (Event, error) {
	if err := h.validate(); err != nil {
		return Event{}, err
	}
	h.State, h.CreatedAt, h.UpdatedAt = StateCreated, tx.now, tx.now
	_, err := tx.stmt(tx.stmts.insertHold).Exec(h.ID[:], h.PaymentHash[:],
		h.Owner, nullIfEmpty(h.RequestKey), int64(h.AmountMsat),
		int64(h.FeeMsat), h.ReceiverKey[:], h.ReceiverLSP[:],
		h.ReceiverInvoice, nanos(h.ReceiverInvoiceExpiry),
		int64(h.ReceiverInvoiceAmountMsat), h.HoldInvoice,
		h.CltvDelta, string(h.RetryPolicy), h.ReleaseSecret[:],
		nanos(h.DeadlineTime), string(StateCreated), nanos(tx.now),
		nanos(tx.now))
	if isUnique(err) {
		return Event{}, fmt.Errorf("%w: payment hash %s or request key %q "+
			"is taken", ErrDuplicate, h.PaymentHash, h.RequestKey)
	}
	if err != nil {
		return Event{}, fmt.Errorf("insert hold %s: %w", h.ID, err)
	}
	return tx.appendEvent(h.ID, StateNone, StateCreated, ReasonNone)
}

// Apply performs one transition in its own durable commit.
func (s *Store) Apply(ctx context.Context, t Transition) (Event, error) {
	if err := t.validate(); err != nil {
		return Event{}, fmt.Errorf("hold %s: %w", t.ID, err)
	}
	var ev Event
	err := s.Update(ctx, func(tx *Tx) error {
		var err error
		ev, err = tx.Apply(t)
		return err
	})
	return ev, err
}

// Result is the outcome of one transition of a batch.
type Result struct {
	Event Event
	Err   error
}

// ApplyBatch performs many transitions in one commit, for callers that can
// wait for a burst to be written together. Each transition succeeds or fails
// on its own; the returned error is for the commit as a whole (then none of
// them happened).
func (s *Store) ApplyBatch(ctx context.Context, ts []Transition) ([]Result, error) {
	res := make([]Result, len(ts))
	err := s.Update(ctx, func(tx *Tx) error {
		for i, t := range ts {
			ev, err := tx.Apply(t)
			res[i] = Result{Event: ev, Err: err}
			if err != nil && !refusedCleanly(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// refusedCleanly reports whether Tx.Apply failed before writing anything, so
// the transaction can go on without it.
func refusedCleanly(err error) bool {
	return errors.Is(err, ErrStaleTransition) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrInvalid) || errors.Is(err, ErrIllegalTransition)
}

// Apply is Store.Apply inside a transaction. It writes nothing unless it
// succeeds, or fails with an error that is not one of the store's refusals
// (then the transaction must be abandoned).
func (tx *Tx) Apply(t Transition) (Event, error) {
	if err := t.validate(); err != nil {
		return Event{}, fmt.Errorf("hold %s: %w", t.ID, err)
	}
	var preimage, hash []byte
	if t.Preimage != nil {
		h := t.Preimage.Hash()
		preimage, hash = t.Preimage[:], h[:]
	}
	attempt := 0
	if t.To == StateForwarding {
		attempt = 1
	}
	var reason Reason
	err := tx.stmt(tx.stmts.transition).QueryRow(string(t.To), nanos(tx.now),
		t.Reason.Rank(), string(t.Reason), t.IncomingExpiry,
		t.DeadlineHeight, attempt, preimage, int64(t.OutboundFeeMsat),
		boolInt(t.Resolved), t.ID[:], string(t.From), hash,
	).Scan(&reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Event{}, tx.whyNot(t)
	}
	if err != nil {
		return Event{}, fmt.Errorf("hold %s: %s -> %s: %w", t.ID, t.From,
			t.To, err)
	}
	return tx.appendEvent(t.ID, t.From, t.To, reason)
}

// whyNot explains a compare-and-set that matched no row.
func (tx *Tx) whyNot(t Transition) error {
	var cur State
	err := tx.QueryRow("SELECT state FROM holds WHERE id = ?", t.ID[:]).Scan(&cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("hold %s: %w", t.ID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("hold %s: %w", t.ID, err)
	case cur == t.From && t.Preimage != nil:
		return fmt.Errorf("%w: hold %s: preimage does not match the "+
			"payment hash", ErrInvalid, t.ID)
	}
	return fmt.Errorf("%w: hold %s is %s, not %s, so %s -> %s cannot "+
		"happen", ErrStaleTransition, t.ID, cur, t.From, t.From, t.To)
}

func (tx *Tx) appendEvent(id ID, from, to State, reason Reason) (Event, error) {
	ev := Event{
		HoldID: id, From: from, To: to, Reason: reason, Final: to.Final(),
		At: tx.now,
	}
	res, err := tx.stmt(tx.stmts.insertEvent).Exec(id[:], string(from),
		string(to), string(reason), boolInt(ev.Final), nanos(tx.now))
	if err == nil {
		// seq is the table's rowid.
		var seq int64
		seq, err = res.LastInsertId()
		ev.Seq = uint64(seq)
	}
	if err != nil {
		// A second final event for a hold is refused by a unique index;
		// reaching it means the state and the log disagree, so this is
		// not a clean refusal: the caller abandons the transaction.
		return Event{}, fmt.Errorf("hold %s: append event: %w", id, err)
	}
	tx.events++
	return ev, nil
}

// SetHoldInvoice records the payment request lnd made for a CREATED hold.
func (s *Store) SetHoldInvoice(ctx context.Context, id ID, payReq string) error {
	if payReq == "" {
		return fmt.Errorf("%w: empty payment request", ErrInvalid)
	}
	return s.Update(ctx, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE holds SET hold_invoice = ?, updated_at = ?
			WHERE id = ? AND state = 'CREATED' AND hold_invoice IN ('', ?)`,
			payReq, nanos(tx.now), id[:], payReq)
		if err != nil {
			return fmt.Errorf("hold %s: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: hold %s is not a CREATED hold without "+
				"an invoice", ErrStaleTransition, id)
		}
		return nil
	})
}

// MarkResolved records that lnd has done what the hold's final state asks:
// the hold invoice is settled or canceled. It is idempotent. Resolved holds
// are no longer resumed at start-up.
func (s *Store) MarkResolved(ctx context.Context, id ID) error {
	return s.Update(ctx, func(tx *Tx) error {
		var state State
		err := tx.QueryRow(`UPDATE holds SET resolved = 1, updated_at = ?
			WHERE id = ? AND state IN ('SETTLED', 'CANCELED')
			RETURNING state`, nanos(tx.now), id[:]).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.QueryRow("SELECT state FROM holds WHERE id = ?",
				id[:]).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("hold %s: %w", id, ErrNotFound)
			}
			if err == nil {
				err = fmt.Errorf("%w: hold %s is %s, not final",
					ErrStaleTransition, id, state)
			}
		}
		return err
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
