package holdstore

import (
	"context"
	"fmt"
)

// ownedEventsQuery reads an owner's events in (after, last]. CROSS JOIN
// keeps SQLite walking the log in seq order, one key lookup per event,
// rather than gathering all of an owner's events to sort them.
const ownedEventsQuery = `SELECT e.seq, e.hold_id, e.from_state, e.to_state,
	e.reason, e.final, e.at
	FROM hold_events e CROSS JOIN holds h ON h.id = e.hold_id
	WHERE e.seq > ? AND e.seq <= ? AND h.owner = ?
	ORDER BY e.seq LIMIT ?`

// OwnedEvents is the event log as a wallet token sees it: up to limit
// events after seq after of the holds whose owner is owner, in order. read
// is how far the log was read: the last event returned when limit events
// were, otherwise the newest event at the time of the call. Every event of
// owner's up to read has been returned, so a reader resumes from read
// without reading other owners' events again, and skips none of its own.
func (s *Store) OwnedEvents(ctx context.Context, owner string, after uint64, limit int) (evs []Event, read uint64, err error) {
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	// Every event up to last is committed: the one writer commits them in
	// order. Bounding the scan by it makes read exact.
	last, err := s.LastSeq(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("events of %s: %w", owner, err)
	}
	if last <= after {
		return nil, after, nil
	}
	rows, err := s.db.QueryContext(ctx, ownedEventsQuery, after, last, owner, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("events of %s after %d: %w", owner, after, err)
	}
	if evs, err = scanEvents(rows); err != nil {
		return nil, 0, fmt.Errorf("events of %s after %d: %w", owner, after, err)
	}
	if len(evs) == limit {
		return evs, evs[len(evs)-1].Seq, nil
	}
	return evs, last, nil
}
