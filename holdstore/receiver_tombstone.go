package holdstore

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// ErrNoTombstone: no final word kept for that sender LSP and hold.
var ErrNoTombstone = errors.New("no tombstone")

// Tombstone is a sender LSP's final word (settled or canceled) on a hold
// that was not in any mailbox when it came: the hold's held_htlc_available
// may still be on its way (a crash reorders the two). When it arrives, its
// item is created in this state, never as pending.
type Tombstone struct {
	SenderLSP   route.Vertex
	HoldID      ID
	PaymentHash lntypes.Hash
	State       MailboxState // settled or canceled
	Reason      string
	CreatedAt   time.Time
}

// AddTombstone keeps ts. The first final word on a hold stands: a second
// one changes nothing (a sender LSP says one final outcome per hold,
// however many times).
func (t *Tx) AddTombstone(ts *Tombstone) error {
	if ts.State != MailboxSettled && ts.State != MailboxCanceled {
		return fmt.Errorf("%w: tombstone in state %q", ErrInvalid, ts.State)
	}
	_, err := t.Exec(`INSERT INTO receiver_tombstones (sender_lsp, hold_id,
		payment_hash, state, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (sender_lsp, hold_id) DO NOTHING`,
		ts.SenderLSP[:], ts.HoldID[:], ts.PaymentHash[:], ts.State,
		ts.Reason, nanos(t.now))
	return err
}

// TakeTombstone returns the tombstone of the sender LSP's hold and deletes
// it (its item is being created from it); ErrNoTombstone if there is none.
func (t *Tx) TakeTombstone(senderLSP route.Vertex, hold ID) (*Tombstone, error) {
	var (
		ts      = Tombstone{SenderLSP: senderLSP, HoldID: hold}
		hash    []byte
		created int64
	)
	err := t.QueryRow(`DELETE FROM receiver_tombstones
		WHERE sender_lsp = ? AND hold_id = ?
		RETURNING payment_hash, state, reason, created_at`,
		senderLSP[:], hold[:]).Scan(&hash, &ts.State, &ts.Reason, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoTombstone
	}
	if err != nil {
		return nil, err
	}
	copy(ts.PaymentHash[:], hash)
	ts.CreatedAt = time.Unix(0, created)
	return &ts, nil
}

// PruneTombstones deletes the tombstones kept before before, for holds
// whose held_htlc_available can no longer arrive, and returns how many.
func (t *Tx) PruneTombstones(before time.Time) (int64, error) {
	res, err := t.Exec(`DELETE FROM receiver_tombstones WHERE created_at < ?`,
		nanos(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
