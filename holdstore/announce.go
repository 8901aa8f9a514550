package holdstore

import (
	"context"
	"fmt"

	"github.com/lightningnetwork/lnd/routing/route"
)

// Unannounced returns up to limit HELD holds whose held_htlc_available no
// receiver LSP has acknowledged yet (MarkAnnounced), oldest first, starting
// after the hold cursor names ("" for the first page). It reads an index of
// just those holds, so it costs what it returns, however many are held.
func (s *Store) Unannounced(ctx context.Context, cursor string, limit int) (*Page, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	q := "SELECT " + holdColumns + ` FROM holds
		WHERE state = 'HELD' AND announced_at IS NULL`
	args := []any{}
	if cursor != "" {
		created, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		q += " AND (created_at, id) > (?, ?)"
		args = append(args, created, id[:])
	}
	q += " ORDER BY created_at, id LIMIT ?"
	args = append(args, limit)
	holds, err := s.queryHolds(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	p := &Page{Holds: holds}
	if len(holds) == limit {
		last := holds[len(holds)-1]
		p.Next = encodeCursor(last.CreatedAt.UnixNano(), last.ID)
	}
	return p, nil
}

// MarkAnnounced records that the receiver LSP has stored the
// held_htlc_available of each hold in ids: they are not announced again,
// across restarts too. Holds that are no longer HELD, or already marked, are
// left as they are; it is idempotent.
func (s *Store) MarkAnnounced(ctx context.Context, ids ...ID) error {
	if len(ids) == 0 {
		return nil
	}
	return s.update(ctx, true, func(tx *Tx) error {
		for _, id := range ids {
			_, err := tx.Exec(`UPDATE holds SET announced_at = ?
				WHERE id = ? AND state = 'HELD' AND announced_at IS NULL`,
				nanos(tx.now), id[:])
			if err != nil {
				return fmt.Errorf("hold %s: %w", id, err)
			}
		}
		return nil
	})
}

// ClearAnnounced forgets the acknowledgements of the HELD holds for
// receiverLSP, so they are announced again: for an operator whose receiver
// LSP lost what it had stored. It returns how many holds it cleared.
func (s *Store) ClearAnnounced(ctx context.Context, receiverLSP route.Vertex) (int, error) {
	var n int64
	err := s.update(ctx, true, func(tx *Tx) error {
		res, err := tx.Exec(`UPDATE holds SET announced_at = NULL
			WHERE state = 'HELD' AND announced_at IS NOT NULL
			AND receiver_lsp = ?`, receiverLSP[:])
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
