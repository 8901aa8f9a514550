package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// This file and the other receiver*.go files are the receiver LSP's tables
// (migration 0002): registered receivers, their invoices in custody and
// their mailboxes. Writes are Tx methods, run inside Store.Update; reads are
// Store methods. The policy (limits, which invoice fits, what a hold_outcome
// does) is package receiverlsp's; here is only the SQL.

// Errors of the receiver tables. Match them with errors.Is.
var (
	// ErrUnknownReceiver: no receiver registered with that node key.
	ErrUnknownReceiver = errors.New("receiver not registered")

	// ErrChallengeUsed: a registration challenge was answered before.
	ErrChallengeUsed = errors.New("registration challenge already used")

	// ErrItemNotFound: no mailbox item for that sender LSP and hold.
	ErrItemNotFound = errors.New("mailbox item not found")

	// ErrInvoiceTaken: the invoice is already reserved (or gone).
	ErrInvoiceTaken = errors.New("invoice already handed out")
)

// InvoicesLow is where a receiver's invoices_low webhook stands.
type InvoicesLow int

// The invoices_low states.
const (
	// LowFine: the stock is at or over the threshold, or nobody looked.
	LowFine InvoicesLow = 0

	// LowOwed: the stock fell under the threshold; a notice is owed.
	LowOwed InvoicesLow = 1

	// LowSent: the notice went out; no other until the stock recovers.
	LowSent InvoicesLow = 2
)

// Receiver is a registered receiver: one that answered a registration
// challenge over HTTP (it has a token), or a peer that called the LSPS0
// methods over BOLT8 (it has none). Its webhooks are in receiver_webhooks
// (see Webhooks).
type Receiver struct {
	NodeKey route.Vertex

	// TokenHash is the SHA-256 of its bearer token; all zeros when
	// HasToken is false (no secret hashes to that).
	TokenHash [32]byte
	HasToken  bool

	InvoicesLow  InvoicesLow
	RegisteredAt time.Time
	UpdatedAt    time.Time
}

const receiverColumns = `node_key, token_hash, invoices_low,
	registered_at, updated_at`

func scanReceiver(row scanner) (*Receiver, error) {
	var (
		r                Receiver
		key, hash        []byte
		created, updated int64
	)
	err := row.Scan(&key, &hash, &r.InvoicesLow, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownReceiver
	}
	if err != nil {
		return nil, err
	}
	copy(r.NodeKey[:], key)
	r.HasToken = len(hash) == len(r.TokenHash)
	if r.HasToken {
		copy(r.TokenHash[:], hash)
	}
	r.RegisteredAt = time.Unix(0, created)
	r.UpdatedAt = time.Unix(0, updated)
	return &r, nil
}

// Receiver returns the receiver registered with key.
func (s *Store) Receiver(ctx context.Context, key route.Vertex) (*Receiver, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+receiverColumns+
		" FROM receivers WHERE node_key = ?", key[:])
	r, err := scanReceiver(row)
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", key, err)
	}
	return r, nil
}

// Receiver returns the receiver registered with key, in the transaction.
func (t *Tx) Receiver(key route.Vertex) (*Receiver, error) {
	row := t.QueryRow("SELECT "+receiverColumns+
		" FROM receivers WHERE node_key = ?", key[:])
	r, err := scanReceiver(row)
	if err != nil {
		return nil, fmt.Errorf("receiver %s: %w", key, err)
	}
	return r, nil
}

// UseChallenge records that the registration challenge with nonce was
// answered. It fails with ErrChallengeUsed if it was before. The record is
// kept until expires, then PruneChallenges may drop it.
func (t *Tx) UseChallenge(nonce [32]byte, expires time.Time) error {
	_, err := t.Exec(`INSERT INTO receiver_challenges (nonce, expires_at)
		VALUES (?, ?)`, nonce[:], nanos(expires))
	if isUnique(err) {
		return ErrChallengeUsed
	}
	return err
}

// PruneChallenges drops the records of challenges that expired before now;
// those can no longer be answered anyway.
func (t *Tx) PruneChallenges(now time.Time) (int64, error) {
	res, err := t.Exec("DELETE FROM receiver_challenges WHERE expires_at < ?",
		nanos(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// PutReceiver registers a receiver with a bearer token, or replaces the token
// of one registered before (its invoices, mailbox and webhooks stay). A
// webhookURL that is not empty is set as the webhook under DefaultAppName,
// as SetWebhook does but without its limit: the HTTP registration's one
// webhook. An empty one leaves the webhooks as they are.
func (t *Tx) PutReceiver(key route.Vertex, tokenHash [32]byte, webhookURL string) error {
	now := nanos(t.now)
	_, err := t.Exec(`INSERT INTO receivers (node_key, token_hash,
		registered_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (node_key) DO UPDATE SET token_hash = excluded.token_hash,
		updated_at = excluded.updated_at`,
		key[:], tokenHash[:], now, now)
	if err != nil || webhookURL == "" {
		return err
	}
	_, err = t.SetWebhook(key, DefaultAppName, webhookURL, 0)
	return err
}

// EnsureReceiver registers key as a receiver without a token, unless it is
// registered already, and reports whether it was not. A peer that calls the
// LSPS0 methods over BOLT8 is authenticated by BOLT8: it needs no token.
func (t *Tx) EnsureReceiver(key route.Vertex) (bool, error) {
	now := nanos(t.now)
	res, err := t.Exec(`INSERT INTO receivers (node_key, token_hash,
		registered_at, updated_at) VALUES (?, NULL, ?, ?)
		ON CONFLICT (node_key) DO NOTHING`, key[:], now, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetInvoicesLow moves the receiver's invoices_low notice from one state to
// another, and reports whether it was in from.
func (t *Tx) SetInvoicesLow(key route.Vertex, from, to InvoicesLow) (bool, error) {
	res, err := t.Exec(`UPDATE receivers SET invoices_low = ?
		WHERE node_key = ? AND invoices_low = ?`, to, key[:], from)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClearInvoicesLow marks the receiver's stock fine again.
func (t *Tx) ClearInvoicesLow(key route.Vertex) error {
	_, err := t.Exec(`UPDATE receivers SET invoices_low = 0
		WHERE node_key = ? AND invoices_low <> 0`, key[:])
	return err
}

// InvoicesLowOwed returns the receivers with a webhook that are owed an
// invoices_low notice.
func (s *Store) InvoicesLowOwed(ctx context.Context) ([]*Receiver, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+receiverColumns+
		` FROM receivers r WHERE invoices_low = 1 AND EXISTS (SELECT 1
		FROM receiver_webhooks w WHERE w.receiver_key = r.node_key)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Receiver
	for rows.Next() {
		r, err := scanReceiver(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
