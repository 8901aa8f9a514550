package daemon

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// adminDB answers the admin API's questions about the receiver role's
// tables that holdstore has no read method for: every receiver with its
// counts, the mailbox across receivers, totals by state. It reads
// holdstore's file through its own pool of query-only connections, which
// WAL lets run beside the store's writer; it never writes.
//
// These statements read holdstore's schema (migration 0002) from outside
// that package. The admin API's tests run each against a database written
// by holdstore's own methods, so a migration that breaks them fails there.
type adminDB struct {
	db *sql.DB
}

// openAdminDB opens path, a database holdstore has created and migrated.
func openAdminDB(path string) (*adminDB, error) {
	q := url.Values{}
	q.Add("_pragma", "query_only(1)")
	q.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("admin reads of %s: %w", path, err)
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	return &adminDB{db: db}, nil
}

func (a *adminDB) Close() error { return a.db.Close() }

// errBadCursor: a cursor that no page of ours handed out.
var errBadCursor = errors.New("cursor is malformed")

// receiverRow is a receiver with its invoice and mailbox counts.
type receiverRow struct {
	NodeKey                      route.Vertex
	WebhookURL                   string
	Available, Expired, Reserved int
	Pending                      int
	RegisteredAt, UpdatedAt      time.Time
}

// The counts run on holdstore's partial indexes: available invoices by
// (receiver, amount, expiry), reserved ones by receiver, pending items by
// (receiver, sender LSP).
const receiversQuery = `SELECT r.node_key, r.webhook_url, r.registered_at, r.updated_at,
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_available
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NULL AND i.expires_at > ?1),
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_available
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NULL AND i.expires_at <= ?1),
	(SELECT COUNT(*) FROM receiver_invoices i INDEXED BY receiver_invoices_reserved
		WHERE i.receiver_key = r.node_key AND i.hold_id IS NOT NULL),
	(SELECT COUNT(*) FROM receiver_mailbox m INDEXED BY receiver_mailbox_pending
		WHERE m.receiver_key = r.node_key AND m.state = 'pending')
	FROM receivers r WHERE r.node_key > ?2 ORDER BY r.node_key LIMIT ?3`

// receivers returns up to limit receivers whose node key sorts after the
// cursor's, with their counts at now, and the cursor of the next page
// (empty after the last).
func (a *adminDB) receivers(ctx context.Context, now time.Time, cursor string, limit int) ([]receiverRow, string, error) {
	var after []byte
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) != len(route.Vertex{}) {
			return nil, "", errBadCursor
		}
		after = b
	} else {
		after = []byte{}
	}
	rows, err := a.db.QueryContext(ctx, receiversQuery, now.UnixNano(), after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list receivers: %w", err)
	}
	defer rows.Close()
	var out []receiverRow
	for rows.Next() {
		var (
			r                receiverRow
			key              []byte
			created, updated int64
		)
		if err := rows.Scan(&key, &r.WebhookURL, &created, &updated, &r.Available,
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

// mailboxFilter selects mailbox items; zero fields match everything.
type mailboxFilter struct {
	Receiver *route.Vertex
	States   []string
	Cursor   string
	Limit    int
}

// mailboxRow is a mailbox item without its secrets.
type mailboxRow struct {
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

// mailbox returns a page of items matching f, newest first, and the cursor
// of the next page. Without a receiver it reads the table in created_at
// order, which no index covers: fine for an operator's look, not a hot path.
func (a *adminDB) mailbox(ctx context.Context, f mailboxFilter) ([]mailboxRow, string, error) {
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
	rows, err := a.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list mailbox: %w", err)
	}
	defer rows.Close()
	var out []mailboxRow
	for rows.Next() {
		var (
			r                          mailboxRow
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
		return 0, nil, nil, errBadCursor
	}
	return int64(binary.BigEndian.Uint64(b[:8])), b[8:41], b[41:], nil
}

// receiverTotals are the receiver role's counts across receivers.
type receiverTotals struct {
	Receivers                    int
	Available, Expired, Reserved int
	MailboxByState               map[string]int
}

// totals counts receivers, invoices (at now) and mailbox items by state.
func (a *adminDB) totals(ctx context.Context, now time.Time) (*receiverTotals, error) {
	t := &receiverTotals{MailboxByState: map[string]int{}}
	err := a.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM receivers),
		COALESCE(SUM(hold_id IS NULL AND expires_at > ?1), 0),
		COALESCE(SUM(hold_id IS NULL AND expires_at <= ?1), 0),
		COALESCE(SUM(hold_id IS NOT NULL), 0)
		FROM receiver_invoices`, now.UnixNano()).Scan(&t.Receivers,
		&t.Available, &t.Expired, &t.Reserved)
	if err != nil {
		return nil, fmt.Errorf("count invoices: %w", err)
	}
	rows, err := a.db.QueryContext(ctx,
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
