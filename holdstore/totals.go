package holdstore

import (
	"context"
	"database/sql"
	"fmt"
	"maps"

	"github.com/lightningnetwork/lnd/lnwire"
)

// Pending is what the holds not yet final may still need: the LSP may have
// to forward each of them. Triggers keep it (migration 0007) in the same
// statement as every hold insert and state change, so reading it costs the
// same with 10 or 100,000 holds.
type Pending struct {
	AmountMsat lnwire.MilliSatoshi
	Count      int
}

// The recount is the definition the triggers keep: the capacity check's
// sum before there were totals, and a GROUP BY over every hold.
const (
	recountPendingSQL = `SELECT COALESCE(SUM(amount_msat), 0), COUNT(*) FROM holds
		WHERE resolved = 0 AND state NOT IN ('SETTLED', 'CANCELED')`
	recountStatesSQL = "SELECT state, COUNT(*) FROM holds GROUP BY state"
)

// PendingTotals returns the running total of the holds not yet final.
func (s *Store) PendingTotals(ctx context.Context) (Pending, error) {
	var p Pending
	err := s.db.QueryRowContext(ctx, `SELECT pending_amount_msat, pending_count
		FROM sender_totals WHERE id = 1`).Scan(&p.AmountMsat, &p.Count)
	return p, err
}

// PendingAmountMsat is the sum of the amounts of every hold not yet final:
// what the LSP may still have to forward.
func (s *Store) PendingAmountMsat(ctx context.Context) (lnwire.MilliSatoshi, error) {
	p, err := s.PendingTotals(ctx)
	return p.AmountMsat, err
}

// CountByState returns how many holds are in each state; states without a
// hold are left out.
func (s *Store) CountByState(ctx context.Context) (map[State]int, error) {
	return scanStateCounts(s.db.QueryContext(ctx,
		"SELECT state, n FROM hold_state_counts WHERE n <> 0"))
}

// TotalsRepaired is how many of the running totals Open found different
// from a recount, and repaired. It stays 0 unless something bypassed the
// triggers (a hand edit, a bug): Open logs each at ERROR.
func (s *Store) TotalsRepaired() int { return s.totalsRepaired }

// recountTotals compares the running totals with a recount before the
// writer starts, and repairs what differs. It reads every hold once (about
// 10 ms at 10,000), in a read transaction: a second process opening the
// file (a tool, a test) takes the write lock only to repair.
func (s *Store) recountTotals(ctx context.Context) error {
	d, err := s.diffTotals(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil || d.same() {
		return err
	}
	// Again under the write lock, and repair.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d, err = readTotalsDiff(ctx, tx); err != nil {
		return err
	}
	repaired := 0
	if d.kept != d.want {
		repaired++
		s.log.Error("running total of pending holds was wrong: repaired",
			"kept_amount_msat", d.kept.AmountMsat, "kept_count", d.kept.Count,
			"recount_amount_msat", d.want.AmountMsat, "recount_count", d.want.Count)
		if _, err := tx.ExecContext(ctx, `UPDATE sender_totals SET
			pending_amount_msat = ?, pending_count = ? WHERE id = 1`,
			int64(d.want.AmountMsat), d.want.Count); err != nil {
			return err
		}
	}
	if !maps.Equal(d.keptStates, d.wantStates) {
		repaired++
		s.log.Error("count of holds by state was wrong: repaired",
			"kept", fmt.Sprint(d.keptStates), "recount", fmt.Sprint(d.wantStates))
		for _, st := range States {
			if _, err := tx.ExecContext(ctx, `UPDATE hold_state_counts
				SET n = ? WHERE state = ?`, d.wantStates[st], string(st)); err != nil {
				return err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.totalsRepaired = repaired
	return nil
}

// totalsDiff is the running totals as kept and as recounted.
type totalsDiff struct {
	kept, want             Pending
	keptStates, wantStates map[State]int
}

func (d *totalsDiff) same() bool {
	return d.kept == d.want && maps.Equal(d.keptStates, d.wantStates)
}

func (s *Store) diffTotals(ctx context.Context, opts *sql.TxOptions) (totalsDiff, error) {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return totalsDiff{}, err
	}
	defer tx.Rollback()
	return readTotalsDiff(ctx, tx)
}

func readTotalsDiff(ctx context.Context, tx *sql.Tx) (totalsDiff, error) {
	var (
		d   totalsDiff
		err error
	)
	// A broken total may be negative: read it signed.
	var kept int64
	if err = tx.QueryRowContext(ctx, `SELECT pending_amount_msat, pending_count
		FROM sender_totals WHERE id = 1`).Scan(&kept, &d.kept.Count); err != nil {
		return d, fmt.Errorf("read totals: %w", err)
	}
	d.kept.AmountMsat = lnwire.MilliSatoshi(kept)
	if err = tx.QueryRowContext(ctx, recountPendingSQL).Scan(&d.want.AmountMsat,
		&d.want.Count); err != nil {
		return d, fmt.Errorf("recount pending: %w", err)
	}
	if d.keptStates, err = scanStateCounts(tx.QueryContext(ctx,
		"SELECT state, n FROM hold_state_counts WHERE n <> 0")); err != nil {
		return d, fmt.Errorf("read state counts: %w", err)
	}
	if d.wantStates, err = scanStateCounts(tx.QueryContext(ctx, recountStatesSQL)); err != nil {
		return d, fmt.Errorf("recount states: %w", err)
	}
	return d, nil
}

func scanStateCounts(rows *sql.Rows, err error) (map[State]int, error) {
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
