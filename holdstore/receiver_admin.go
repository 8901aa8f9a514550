package holdstore

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// The operator's views of the receiver tables, across receivers: each
// receiver with its counts, the mailbox a page at a time, totals by state.
// They read through the store's pool, beside the writer.

// errMalformedCursor: a cursor that no page of ours handed out.
var errMalformedCursor = fmt.Errorf("%w: malformed cursor", ErrInvalid)

// ReceiverSummary is a receiver with its invoice and mailbox counts.
type ReceiverSummary struct {
	NodeKey route.Vertex

	// WebhookURL is its webhook under DefaultAppName, else its oldest;
	// empty for none. Webhooks counts them.
	WebhookURL string
	Webhooks   int

	Available, Expired, Reserved int
	Pending                      int
	RegisteredAt, UpdatedAt      time.Time
}

// The counts run on holdstore's partial indexes: available invoices by
// (receiver, amount, expiry), reserved ones by receiver; pending items are
// the running counts (migration 0009).
const receiversQuery = `SELECT r.node_key,
	COALESCE((SELECT w.url FROM receiver_webhooks w WHERE w.receiver_key = r.node_key
		ORDER BY w.app_name <> 'default', w.created_at, w.app_name LIMIT 1), ''),
	(SELECT COUNT(*) FROM receiver_webhooks w WHERE w.receiver_key = r.node_key),
	r.registered_at, r.updated_at,
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_available
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NULL AND i.expires_at > ?1),
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_available
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NULL AND i.expires_at <= ?1),
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_reserved
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NOT NULL),
	(SELECT COALESCE(SUM(c.pending), 0) FROM receiver_pending_counts c
		WHERE c.receiver_key = r.node_key)
	FROM receivers r WHERE r.node_key > ?2 ORDER BY r.node_key LIMIT ?3`

// ReceiverSummaries returns up to limit receivers whose node key sorts after the
// cursor's, with their counts at now, and the cursor of the next page
// (empty after the last).
func (s *Store) ReceiverSummaries(ctx context.Context, now time.Time, cursor string, limit int) ([]ReceiverSummary, string, error) {
	var after []byte
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) != len(route.Vertex{}) {
			return nil, "", errMalformedCursor
		}
		after = b
	} else {
		after = []byte{}
	}
	rows, err := s.db.QueryContext(ctx, receiversQuery, now.UnixNano(), after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list receivers: %w", err)
	}
	defer rows.Close()
	var out []ReceiverSummary
	for rows.Next() {
		var (
			r                ReceiverSummary
			key              []byte
			created, updated int64
		)
		if err := rows.Scan(&key, &r.WebhookURL, &r.Webhooks, &created, &updated, &r.Available,
			&r.Expired, &r.Reserved, &r.Pending); err != nil {
			return nil, "", fmt.Errorf("list receivers: %w", err)
		}
		copy(r.NodeKey[:], key)
		r.RegisteredAt, r.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list receivers: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = base64.RawURLEncoding.EncodeToString(out[limit-1].NodeKey[:])
	}
	return out, next, nil
}

// MailboxFilter selects mailbox items; zero fields match everything.
type MailboxFilter struct {
	Receiver *route.Vertex
	States   []string
	Cursor   string
	Limit    int
}

// MailboxEntry is a mailbox item without its secrets.
type MailboxEntry struct {
	SenderLSP, ReceiverKey route.Vertex
	HoldID                 [16]byte
	PaymentHash            [32]byte
	AmountMsat             uint64
	DeadlineHeight         uint32
	DeadlineTime           time.Time
	State, Reason          string
	Version                uint64
	Relayed                bool
	CreatedAt, UpdatedAt   time.Time

	// createdNanos is CreatedAt as stored, for the cursor.
	createdNanos int64
}

const mailboxColumns = `sender_lsp, hold_id, receiver_key, payment_hash,
	amount_msat, deadline_height, deadline_time, state, reason, version,
	relayed, created_at, updated_at`

// MailboxEntries returns a page of mailbox items across receivers matching
// f, newest first, without their secrets, and the cursor of the next page.
func (s *Store) MailboxEntries(ctx context.Context, f MailboxFilter) ([]MailboxEntry, string, error) {
	var (
		where []string
		args  []any
	)
	if f.Receiver != nil {
		where = append(where, "receiver_key = ?")
		args = append(args, f.Receiver[:])
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	if f.Cursor != "" {
		created, lsp, hold, err := decodeMailboxCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at, sender_lsp, hold_id) < (?, ?, ?)")
		args = append(args, created, lsp, hold)
	}
	q := "SELECT " + mailboxColumns + " FROM receiver_mailbox"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, sender_lsp DESC, hold_id DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list mailbox: %w", err)
	}
	defer rows.Close()
	var out []MailboxEntry
	for rows.Next() {
		var (
			r                          MailboxEntry
			lsp, hold, key, hash       []byte
			deadline, created, updated int64
			relayed                    int
		)
		if err := rows.Scan(&lsp, &hold, &key, &hash,
			&r.AmountMsat, &r.DeadlineHeight, &deadline, &r.State, &r.Reason,
			&r.Version, &relayed, &created, &updated); err != nil {
			return nil, "", fmt.Errorf("list mailbox: %w", err)
		}
		copy(r.SenderLSP[:], lsp)
		copy(r.HoldID[:], hold)
		copy(r.ReceiverKey[:], key)
		copy(r.PaymentHash[:], hash)
		r.DeadlineTime = time.Unix(0, deadline)
		r.CreatedAt, r.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
		r.createdNanos, r.Relayed = created, relayed != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list mailbox: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[f.Limit-1]
		next = encodeMailboxCursor(last.createdNanos, last.SenderLSP, last.HoldID)
	}
	return out, next, nil
}

func encodeMailboxCursor(created int64, lsp route.Vertex, hold [16]byte) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(created))
	b = append(append(b, lsp[:]...), hold[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeMailboxCursor(c string) (created int64, lsp, hold []byte, err error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 8+33+16 {
		return 0, nil, nil, errMalformedCursor
	}
	return int64(binary.BigEndian.Uint64(b[:8])), b[8:41], b[41:], nil
}

// ReceiverTotals are the receiver role's counts across receivers.
type ReceiverTotals struct {
	Receivers                    int
	Available, Expired, Reserved int
	MailboxByState               map[string]int
}

// ReceiverTotals counts receivers, invoices (at now) and mailbox items by state.
func (s *Store) ReceiverTotals(ctx context.Context, now time.Time) (*ReceiverTotals, error) {
	t := &ReceiverTotals{MailboxByState: map[string]int{}}
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM receivers),
		COALESCE(SUM(hold_id IS NULL AND expires_at > ?1), 0),
		COALESCE(SUM(hold_id IS NULL AND expires_at <= ?1), 0),
		COALESCE(SUM(hold_id IS NOT NULL), 0)
		FROM receiver_invoices`, now.UnixNano()).Scan(&t.Receivers,
		&t.Available, &t.Expired, &t.Reserved)
	if err != nil {
		return nil, fmt.Errorf("count invoices: %w", err)
	}
	rows, err := s.db.QueryContext(ctx,
		"SELECT state, COUNT(*) FROM receiver_mailbox GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("count mailbox: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			st string
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count mailbox: %w", err)
		}
		t.MailboxByState[st] = n
	}
	return t, rows.Err()
}
