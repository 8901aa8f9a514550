package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// MailboxState is where a held payment stands in its receiver's mailbox, as
// the receiver LSP sees it.
type MailboxState string

// The mailbox states. Settled, canceled and refused are final.
const (
	// MailboxPending: the receiver has not released it yet.
	MailboxPending MailboxState = "pending"

	// MailboxReleased: the receiver's release was recorded (and relayed,
	// or about to be) to the sender LSP.
	MailboxReleased MailboxState = "released"

	// MailboxSettled: the sender LSP paid the receiver.
	MailboxSettled MailboxState = "settled"

	// MailboxCanceled: the sender LSP canceled the hold; Reason says why.
	MailboxCanceled MailboxState = "canceled"

	// MailboxExpired: the deadline passed without a release. The sender
	// LSP's word (canceled, settled) may still follow.
	MailboxExpired MailboxState = "expired"

	// MailboxRefused: never admitted (the mailbox was full); the sender LSP
	// was told so. Reason says why.
	MailboxRefused MailboxState = "refused"
)

// Final reports whether nothing can change the item any more.
func (s MailboxState) Final() bool {
	return s == MailboxSettled || s == MailboxCanceled || s == MailboxRefused
}

// MailboxStates lists every state of a mailbox item.
var MailboxStates = []MailboxState{MailboxPending, MailboxReleased,
	MailboxExpired, MailboxSettled, MailboxCanceled, MailboxRefused}

// mailboxTransitions is the mailbox item's state machine: the states an item
// may move to from each state (mailbox.md is generated from it). An item is
// created pending, or refused when the mailbox is full. A refused release
// (the sender LSP's rejected) puts it back to pending, from released only
// when the refusal names the release the item holds (receiverlsp's
// outcomeTransitions guards the edge); a release that comes
// after the receiver LSP's deadline sweep may still be accepted by the
// sender LSP, which the expired -> released edge records.
var mailboxTransitions = map[MailboxState][]MailboxState{
	MailboxPending: {MailboxPending, MailboxReleased, MailboxExpired,
		MailboxSettled, MailboxCanceled},
	MailboxReleased: {MailboxPending, MailboxSettled, MailboxCanceled},
	MailboxExpired:  {MailboxReleased, MailboxSettled, MailboxCanceled},
}

// MailboxLegal reports whether a mailbox item may move from one state to
// another.
func MailboxLegal(from, to MailboxState) bool {
	return slices.Contains(mailboxTransitions[from], to)
}

// MailboxItem is one held_htlc_available in a receiver's mailbox.
type MailboxItem struct {
	SenderLSP      route.Vertex
	HoldID         ID
	ReceiverKey    route.Vertex
	PaymentHash    lntypes.Hash
	AmountMsat     lnwire.MilliSatoshi
	DeadlineHeight uint32
	DeadlineTime   time.Time
	ReleaseSecret  [32]byte

	State  MailboxState
	Reason string

	// Version starts at 1 and grows with every change a reader can see.
	Version uint64

	// Release is the receiver's last release (TLV bytes), Relayed whether
	// it reached the bus.
	Release []byte
	Relayed bool

	// Woken and Warned: the payment_incoming and hold_expiring webhooks
	// are done with (sent, given up, or not wanted).
	Woken  bool
	Warned bool

	CreatedAt time.Time
	UpdatedAt time.Time
}

const itemColumns = `sender_lsp, hold_id, receiver_key, payment_hash,
	amount_msat, deadline_height, deadline_time, release_secret, state,
	reason, version, release, relayed, woken, warned, created_at, updated_at`

func scanItem(row scanner) (*MailboxItem, error) {
	var (
		it                           MailboxItem
		lsp, hold, key, hash, secret []byte
		deadline, created, updated   int64
		relayed, woken, warned       int
	)
	err := row.Scan(&lsp, &hold, &key, &hash, &it.AmountMsat,
		&it.DeadlineHeight, &deadline, &secret, &it.State, &it.Reason,
		&it.Version, &it.Release, &relayed, &woken, &warned, &created,
		&updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrItemNotFound
	}
	if err != nil {
		return nil, err
	}
	copy(it.SenderLSP[:], lsp)
	copy(it.HoldID[:], hold)
	copy(it.ReceiverKey[:], key)
	copy(it.PaymentHash[:], hash)
	copy(it.ReleaseSecret[:], secret)
	it.DeadlineTime = time.Unix(0, deadline)
	it.CreatedAt = time.Unix(0, created)
	it.UpdatedAt = time.Unix(0, updated)
	it.Relayed, it.Woken, it.Warned = relayed != 0, woken != 0, warned != 0
	return &it, nil
}

func scanItems(rows *sql.Rows, err error) ([]*MailboxItem, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*MailboxItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// nullBlob binds an empty byte slice as NULL.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// MailboxItem returns the item of the sender LSP's hold.
func (t *Tx) MailboxItem(senderLSP route.Vertex, hold ID) (*MailboxItem, error) {
	return scanItem(t.QueryRow("SELECT "+itemColumns+
		" FROM receiver_mailbox WHERE sender_lsp = ? AND hold_id = ?",
		senderLSP[:], hold[:]))
}

// AddMailboxItem stores a new item, in the state it carries. The invoice
// reserved for its (receiver, sender LSP, hold) must carry its payment hash:
// the database refuses it otherwise.
func (t *Tx) AddMailboxItem(it *MailboxItem) error {
	if it.State == "" || it.ReleaseSecret == [32]byte{} || it.AmountMsat == 0 {
		return fmt.Errorf("%w: mailbox item without state, secret or amount",
			ErrInvalid)
	}
	now := nanos(t.now)
	_, err := t.Exec(`INSERT INTO receiver_mailbox (sender_lsp, hold_id,
		receiver_key, payment_hash, amount_msat, deadline_height,
		deadline_time, release_secret, state, reason, woken, warned,
		created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		it.SenderLSP[:], it.HoldID[:], it.ReceiverKey[:], it.PaymentHash[:],
		int64(it.AmountMsat), it.DeadlineHeight, nanos(it.DeadlineTime),
		it.ReleaseSecret[:], it.State, it.Reason, boolInt(it.Woken),
		boolInt(it.Warned), now, now)
	if isUnique(err) {
		return fmt.Errorf("%w: mailbox item for hold %s of %s", ErrDuplicate,
			it.HoldID, it.SenderLSP)
	}
	return err
}

// CountPending counts the receiver's pending items; with a sender LSP, only
// that LSP's. It reads the running counts (migration 0009): the same cost
// with 10 or 10,000 pending.
func (t *Tx) CountPending(receiver route.Vertex, senderLSP *route.Vertex) (int, error) {
	q := `SELECT COALESCE(SUM(pending), 0) FROM receiver_pending_counts
		WHERE receiver_key = ?`
	args := []any{receiver[:]}
	if senderLSP != nil {
		q += " AND sender_lsp = ?"
		args = append(args, senderLSP[:])
	}
	var n int
	err := t.QueryRow(q, args...).Scan(&n)
	return n, err
}

// MailboxChange moves an item from one state to another (or the same one):
// a compare-and-set on the state, which bumps the version.
type MailboxChange struct {
	SenderLSP route.Vertex
	HoldID    ID
	From      MailboxState
	To        MailboxState

	// Reason replaces the item's reason.
	Reason string

	// Release, if set, replaces the stored release and marks it not yet
	// relayed.
	Release []byte
}

// ChangeMailboxItem applies c. It fails with ErrIllegalTransition if the
// state machine has no such edge, ErrStaleTransition if the item is not in
// c.From, and ErrItemNotFound if there is no such item.
func (t *Tx) ChangeMailboxItem(c MailboxChange) error {
	if !MailboxLegal(c.From, c.To) {
		return fmt.Errorf("%w: mailbox item %s -> %s", ErrIllegalTransition, c.From, c.To)
	}
	res, err := t.Exec(`UPDATE receiver_mailbox SET state = ?, reason = ?,
		release = COALESCE(?, release),
		relayed = CASE WHEN ? IS NULL THEN relayed ELSE 0 END,
		version = version + 1, updated_at = ?
		WHERE sender_lsp = ? AND hold_id = ? AND state = ?`,
		c.To, c.Reason, nullBlob(c.Release), nullBlob(c.Release), nanos(t.now),
		c.SenderLSP[:], c.HoldID[:], c.From)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if _, err := t.MailboxItem(c.SenderLSP, c.HoldID); err != nil {
		return err
	}
	return fmt.Errorf("%w: mailbox item %s is no longer %s", ErrStaleTransition,
		c.HoldID, c.From)
}

// MarkRelayed records that the item's release reached the bus, unless a
// newer release replaced it since (then that one is still to relay).
func (t *Tx) MarkRelayed(senderLSP route.Vertex, hold ID, release []byte) error {
	_, err := t.Exec(`UPDATE receiver_mailbox SET relayed = 1
		WHERE sender_lsp = ? AND hold_id = ? AND release = ?`,
		senderLSP[:], hold[:], release)
	return err
}

// MarkWoken records that the payment_incoming webhook for the receiver's
// pending items created at or before upTo is done with.
func (t *Tx) MarkWoken(receiver route.Vertex, upTo time.Time) error {
	_, err := t.Exec(`UPDATE receiver_mailbox SET woken = 1
		WHERE receiver_key = ? AND state = 'pending' AND woken = 0
		AND created_at <= ?`, receiver[:], nanos(upTo))
	return err
}

// MarkWarned records that the hold_expiring webhook for the items is done
// with.
func (t *Tx) MarkWarned(items []*MailboxItem) error {
	for _, it := range items {
		_, err := t.Exec(`UPDATE receiver_mailbox SET warned = 1
			WHERE sender_lsp = ? AND hold_id = ?`, it.SenderLSP[:], it.HoldID[:])
		if err != nil {
			return err
		}
	}
	return nil
}

// ExpireDue moves every pending item whose deadline time is at or before
// now, or whose deadline height is at or below height (0: no height known),
// to expired with the reason, and returns them as they are after.
func (t *Tx) ExpireDue(now time.Time, height uint32, reason string) ([]*MailboxItem, error) {
	set := `UPDATE receiver_mailbox SET state = 'expired', reason = ?,
		version = version + 1, updated_at = ? WHERE state = 'pending' AND `
	ret := " RETURNING " + itemColumns
	due, err := scanItems(t.Query(set+"deadline_time <= ?"+ret, reason,
		nanos(t.now), nanos(now)))
	if err != nil || height == 0 {
		return due, err
	}
	more, err := scanItems(t.Query(set+"deadline_height <= ?"+ret, reason,
		nanos(t.now), height))
	return append(due, more...), err
}

// MailboxItem returns the item of the sender LSP's hold.
func (s *Store) MailboxItem(ctx context.Context, senderLSP route.Vertex, hold ID) (*MailboxItem, error) {
	return scanItem(s.db.QueryRowContext(ctx, "SELECT "+itemColumns+
		" FROM receiver_mailbox WHERE sender_lsp = ? AND hold_id = ?",
		senderLSP[:], hold[:]))
}

// PendingItems returns up to limit of the receiver's pending items whose
// deadline time is after now, oldest first.
func (s *Store) PendingItems(ctx context.Context, receiver route.Vertex,
	now time.Time, limit int) ([]*MailboxItem, error) {

	return scanItems(s.db.QueryContext(ctx, "SELECT "+itemColumns+`
		FROM receiver_mailbox INDEXED BY receiver_mailbox_pending
		WHERE receiver_key = ? AND state = 'pending' AND deadline_time > ?
		ORDER BY created_at, sender_lsp, hold_id LIMIT ?`,
		receiver[:], nanos(now), limit))
}

// Wake is a payment_incoming webhook owed to a receiver (to each of its
// webhooks): for its pending items created up to Newest.
type Wake struct {
	Receiver route.Vertex
	Items    int
	Newest   time.Time
}

// WakesOwed returns the payment_incoming webhooks owed, one per receiver.
func (s *Store) WakesOwed(ctx context.Context) ([]Wake, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT m.receiver_key,
		COUNT(*), MAX(m.created_at)
		FROM receiver_mailbox m INDEXED BY receiver_mailbox_unwoken
		WHERE m.state = 'pending' AND m.woken = 0
		GROUP BY m.receiver_key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Wake
	for rows.Next() {
		var (
			w      Wake
			key    []byte
			newest int64
		)
		if err := rows.Scan(&key, &w.Items, &newest); err != nil {
			return nil, err
		}
		copy(w.Receiver[:], key)
		w.Newest = time.Unix(0, newest)
		out = append(out, w)
	}
	return out, rows.Err()
}

// ExpiringSoon returns the pending items not yet warned about whose
// deadline time is at or before by, or whose deadline height is at or below
// height (0: no height known).
func (s *Store) ExpiringSoon(ctx context.Context, by time.Time, height uint32) ([]*MailboxItem, error) {
	q := "SELECT " + itemColumns + ` FROM receiver_mailbox
		WHERE state = 'pending' AND warned = 0 AND `
	due, err := scanItems(s.db.QueryContext(ctx, q+"deadline_time <= ?", nanos(by)))
	if err != nil || height == 0 {
		return due, err
	}
	more, err := scanItems(s.db.QueryContext(ctx,
		q+"deadline_height <= ? AND deadline_time > ?", height, nanos(by)))
	return append(due, more...), err
}

// Unrelayed returns the released items whose release has not reached the
// bus and that last changed at or before before.
func (s *Store) Unrelayed(ctx context.Context, before time.Time) ([]*MailboxItem, error) {
	return scanItems(s.db.QueryContext(ctx, "SELECT "+itemColumns+`
		FROM receiver_mailbox INDEXED BY receiver_mailbox_unrelayed
		WHERE state = 'released' AND relayed = 0 AND updated_at <= ?`,
		nanos(before)))
}
