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
	err := s.update(ctx, true, func(tx *Tx) error {
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
	_, err := tx.stmts.insertHold.Exec(h.ID[:], h.PaymentHash[:],
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
	err := s.update(ctx, true, func(tx *Tx) error {
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

// ApplyPath performs consecutive transitions of one hold in its own durable
// commit (see Tx.ApplyPath).
func (s *Store) ApplyPath(ctx context.Context, ts ...Transition) ([]Event, error) {
	var evs []Event
	err := s.update(ctx, true, func(tx *Tx) error {
		var err error
		evs, err = tx.ApplyPath(ts...)
		return err
	})
	return evs, err
}

// ApplyBatch performs many transitions in one commit, for callers that can
// wait for a burst to be written together. Each transition succeeds or fails
// on its own; the returned error is for the commit as a whole (then none of
// them happened).
func (s *Store) ApplyBatch(ctx context.Context, ts []Transition) ([]Result, error) {
	res := make([]Result, len(ts))
	err := s.update(ctx, true, func(tx *Tx) error {
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
	evs, err := tx.ApplyPath(t)
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// ApplyPath performs consecutive transitions of one hold (each step's To is
// the next one's From) as one compare-and-set on the first step's From: one
// UPDATE to the last state and one event per step, each with its own
// sequence number. A release is HELD -> RELEASED -> FORWARDING this way, for
// half the statements of two Apply calls on the hot path. Only the last step
// may carry a reason or Resolved; the other fields may come with any step.
func (tx *Tx) ApplyPath(ts ...Transition) ([]Event, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("%w: empty path", ErrInvalid)
	}
	first, last := ts[0], ts[len(ts)-1]
	merged := Transition{ID: first.ID, From: first.From, To: last.To,
		Reason: last.Reason, Resolved: last.Resolved}
	attempts := 0
	for i, t := range ts {
		if err := t.validate(); err != nil {
			return nil, fmt.Errorf("hold %s: %w", t.ID, err)
		}
		switch {
		case t.ID != first.ID:
			return nil, fmt.Errorf("%w: a path is one hold's", ErrInvalid)
		case i > 0 && t.From != ts[i-1].To:
			return nil, fmt.Errorf("%w: path breaks at %s -> %s", ErrInvalid, t.From, t.To)
		case i < len(ts)-1 && (t.Reason != ReasonNone || t.Resolved):
			return nil, fmt.Errorf("%w: only a path's last step may carry a "+
				"reason or be resolved", ErrInvalid)
		}
		if t.To == StateForwarding {
			attempts++
		}
		if t.To == StateHeld {
			merged.IncomingExpiry, merged.DeadlineHeight = t.IncomingExpiry, t.DeadlineHeight
		}
		if t.To == StateSettled {
			merged.Preimage, merged.OutboundFeeMsat = t.Preimage, t.OutboundFeeMsat
		}
	}
	// The steps before the last keep the stored reason, which the UPDATE
	// returns unless the last step's reason replaced it.
	var before Reason
	if len(ts) > 1 && merged.Reason != ReasonNone {
		err := tx.QueryRow("SELECT failure_reason FROM holds WHERE id = ?",
			first.ID[:]).Scan(&before)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("hold %s: %w", first.ID, err)
		}
	}

	var preimage, hash []byte
	if merged.Preimage != nil {
		h := merged.Preimage.Hash()
		preimage, hash = merged.Preimage[:], h[:]
	}
	after, err := tx.compareAndSet(merged, attempts, preimage, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tx.whyNot(merged)
	}
	if err != nil {
		return nil, fmt.Errorf("hold %s: %s -> %s: %w", merged.ID, merged.From,
			merged.To, err)
	}
	if merged.Reason == ReasonNone {
		before = after
	}
	return tx.appendEvents(ts, before, after)
}

// compareAndSet runs the UPDATE of t and returns the reason stored after
// it, or sql.ErrNoRows if the hold is not in state t.From (or its preimage
// does not match).
//
// A hold gets a reason only on entering CANCELED or FORWARDING, so one in
// CREATED, HELD or RELEASED has none, as a rule. For t without a reason
// from there (every step of the hot path), the UPDATE matches only a blank
// reason and the Exec's count of rows says it all, for a tenth less work
// than scanning the reason back. Should the rule ever not hold, the UPDATE
// matches nothing and the one that returns the reason runs.
func (tx *Tx) compareAndSet(t Transition, attempts int, preimage, hash []byte) (Reason, error) {
	if t.Reason == ReasonNone && (t.From == StateCreated ||
		t.From == StateHeld || t.From == StateReleased) {

		query, args := transitionUpdate(t, attempts, preimage, hash, tx.now, true)
		res, err := tx.Exec(query, args...)
		if err != nil {
			return "", err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return ReasonNone, err
		}
	}
	query, args := transitionUpdate(t, attempts, preimage, hash, tx.now, false)
	var after Reason
	err := tx.QueryRow(query, args...).Scan(&after)
	return after, err
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

// appendEvents appends one event per step of a path; the last carries the
// reason stored after the path, the others the one before.
//
// Each event is its own single-row INSERT, never one statement of several
// rows: SQLite keeps a statement journal for a statement that writes
// several rows and may abort (the unique index below), and every journal
// is memory the driver maps and unmaps anew, four system calls on the
// release's hot path. A failure still undoes the whole path: the caller's
// transaction (or savepoint) is abandoned.
func (tx *Tx) appendEvents(ts []Transition, before, after Reason) ([]Event, error) {
	evs := make([]Event, len(ts))
	insert := tx.stmts.insertEvent
	for i, t := range ts {
		reason := before
		if i == len(ts)-1 {
			reason = after
		}
		evs[i] = Event{HoldID: t.ID, From: t.From, To: t.To, Reason: reason,
			Final: t.To.Final(), At: tx.now}
		res, err := insert.Exec(t.ID[:], string(t.From), string(t.To),
			string(reason), boolInt(evs[i].Final), nanos(tx.now))
		var seq int64
		if err == nil {
			// seq is the table's rowid.
			seq, err = res.LastInsertId()
		}
		if err != nil {
			// A second final event for a hold is refused by a unique
			// index; reaching it means the state and the log disagree,
			// so this is not a clean refusal: the caller abandons the
			// transaction.
			return nil, fmt.Errorf("hold %s: append events: %w", t.ID, err)
		}
		evs[i].Seq = uint64(seq)
	}
	tx.events += len(evs)
	return evs, nil
}

func (tx *Tx) appendEvent(id ID, from, to State, reason Reason) (Event, error) {
	evs, err := tx.appendEvents([]Transition{{ID: id, From: from, To: to}}, reason, reason)
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// SetHoldInvoice records the payment request lnd made for a CREATED hold.
func (s *Store) SetHoldInvoice(ctx context.Context, id ID, payReq string) error {
	if payReq == "" {
		return fmt.Errorf("%w: empty payment request", ErrInvalid)
	}
	return s.update(ctx, true, func(tx *Tx) error {
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
	return s.update(ctx, true, func(tx *Tx) error {
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
