package holdstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// Unresolved returns every hold start-up must resume: all holds not yet in a
// final state, and final ones whose settle or cancel lnd has not yet
// confirmed. Oldest first.
func (s *Store) Unresolved(ctx context.Context) ([]*Hold, error) {
	return s.queryHolds(ctx, "SELECT "+holdColumns+
		" FROM holds WHERE resolved = 0 ORDER BY created_at")
}

// Due returns the non-final holds whose deadline has come: a deadline height
// at or below height, or a deadline time at or before now.
func (s *Store) Due(ctx context.Context, height uint32, now time.Time) ([]*Hold, error) {
	// Two indexed lookups rather than one OR, which SQLite would scan.
	return s.queryHolds(ctx, "SELECT "+holdColumns+` FROM holds
		WHERE resolved = 0 AND deadline_height > 0 AND deadline_height <= ?
		AND state NOT IN ('SETTLED', 'CANCELED')
		UNION
		SELECT `+holdColumns+` FROM holds
		WHERE resolved = 0 AND deadline_time <= ?
		AND state NOT IN ('SETTLED', 'CANCELED')`, height, nanos(now))
}

// Filter selects holds for List. Zero fields match everything.
type Filter struct {
	States        []State
	Owner         string
	ReceiverKey   *route.Vertex
	CreatedAfter  time.Time
	CreatedBefore time.Time

	// Cursor continues a listing from a previous Page's Next.
	Cursor string

	// Limit caps the page; default 100, at most 1000.
	Limit int
}

// Page is one page of a listing, newest first. Next is the cursor of the
// following page, empty at the end.
type Page struct {
	Holds []*Hold
	Next  string
}

// List returns holds matching f, newest first, a page at a time.
func (s *Store) List(ctx context.Context, f Filter) (*Page, error) {
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = 100
	case limit > 1000:
		limit = 1000
	}
	var (
		where []string
		args  []any
	)
	if len(f.States) > 0 {
		marks := make([]string, len(f.States))
		for i, st := range f.States {
			if !st.Valid() {
				return nil, fmt.Errorf("%w: unknown state %q", ErrInvalid, st)
			}
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Owner != "" {
		where = append(where, "owner = ?")
		args = append(args, f.Owner)
	}
	if f.ReceiverKey != nil {
		where = append(where, "receiver_key = ?")
		args = append(args, f.ReceiverKey[:])
	}
	if !f.CreatedAfter.IsZero() {
		where = append(where, "created_at > ?")
		args = append(args, nanos(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, nanos(f.CreatedBefore))
	}
	if f.Cursor != "" {
		created, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, created, id[:])
	}
	q := "SELECT " + holdColumns + " FROM holds"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit+1)

	holds, err := s.queryHolds(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	page := &Page{Holds: holds}
	if len(holds) > limit {
		page.Holds = holds[:limit]
		last := page.Holds[limit-1]
		page.Next = encodeCursor(last.CreatedAt.UnixNano(), last.ID)
	}
	return page, nil
}

// CountByState returns how many holds are in each state.
func (s *Store) CountByState(ctx context.Context) (map[State]int, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT state, COUNT(*) FROM holds GROUP BY state")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counts := make(map[State]int, len(States))
	for rows.Next() {
		var (
			st State
			n  int
		)
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		counts[st] = n
	}
	return counts, rows.Err()
}

func (s *Store) queryHolds(ctx context.Context, q string, args ...any) ([]*Hold, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanHolds(rows)
}

func scanHolds(rows *sql.Rows) ([]*Hold, error) {
	defer rows.Close()
	var holds []*Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, err
		}
		holds = append(holds, h)
	}
	return holds, rows.Err()
}

// A cursor is the (created_at, id) of the last hold of a page.
func encodeCursor(created int64, id ID) string {
	var b [8 + len(ID{})]byte
	binary.BigEndian.PutUint64(b[:8], uint64(created))
	copy(b[8:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func decodeCursor(c string) (int64, ID, error) {
	var id ID
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 8+len(id) {
		return 0, id, fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	copy(id[:], b[8:])
	return int64(binary.BigEndian.Uint64(b[:8])), id, nil
}

// NearestDeadline is the lowest deadline height of the holds not yet final;
// ok is false when none has one yet (CREATED holds have none).
func (s *Store) NearestDeadline(ctx context.Context) (height uint32, ok bool, err error) {
	var h sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT MIN(deadline_height) FROM holds
		WHERE resolved = 0 AND deadline_height > 0
		AND state NOT IN ('SETTLED', 'CANCELED')`).Scan(&h)
	if err != nil {
		return 0, false, fmt.Errorf("nearest deadline: %w", err)
	}
	return uint32(h.Int64), h.Valid, nil
}
