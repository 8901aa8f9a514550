package holdstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Event is one transition as the event log records it. Seq is store-wide,
// increasing and gap-free over committed events, so a subscriber that saw
// Seq n resumes with Events(n).
type Event struct {
	Seq    uint64
	HoldID ID
	From   State
	To     State

	// Reason is the hold's stored reason after the transition: the most
	// specific one it has been given so far.
	Reason Reason

	// Final is set on the one event that takes the hold to SETTLED or
	// CANCELED.
	Final bool
	At    time.Time
}

const eventColumns = "seq, hold_id, from_state, to_state, reason, final, at"

// Events returns up to limit events with a sequence above after, in order.
func (s *Store) Events(ctx context.Context, after uint64, limit int) ([]Event, error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+eventColumns+
		" FROM hold_events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("events after %d: %w", after, err)
	}
	return scanEvents(rows)
}

// History returns every event of one hold, oldest first.
func (s *Store) History(ctx context.Context, id ID) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+eventColumns+
		" FROM hold_events WHERE hold_id = ? ORDER BY seq", id[:])
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	return scanEvents(rows)
}

// LastSeq is the sequence number of the newest event, 0 if there is none.
func (s *Store) LastSeq(ctx context.Context) (uint64, error) {
	var seq sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT MAX(seq) FROM hold_events").Scan(&seq)
	return uint64(seq.Int64), err
}

func scanEvents(rows *sql.Rows) ([]Event, error) {
	defer rows.Close()
	var evs []Event
	for rows.Next() {
		var (
			ev    Event
			id    []byte
			final int
			at    int64
		)
		if err := rows.Scan(&ev.Seq, &id, &ev.From, &ev.To, &ev.Reason,
			&final, &at); err != nil {
			return nil, err
		}
		copy(ev.HoldID[:], id)
		ev.Final = final != 0
		ev.At = time.Unix(0, at)
		evs = append(evs, ev)
	}
	return evs, rows.Err()
}
