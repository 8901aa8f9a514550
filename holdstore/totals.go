package holdstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lightningnetwork/lnd/lnwire"
)

// Pending is what the holds not yet final may still need: the LSP may have
// to forward each of them. Triggers keep it (migration 0007) in the
// statement that inserts a hold or moves one into a final state, so reading
// it costs the same with 10 or 100,000 holds.
type Pending struct {
	AmountMsat lnwire.MilliSatoshi
	Count      int
}

// recountPendingSQL is the definition the triggers keep: the sum the
// capacity check made over every hold before there was a running total.
const recountPendingSQL = `SELECT COALESCE(SUM(amount_msat), 0), COUNT(*) FROM holds
	WHERE resolved = 0 AND state NOT IN ('SETTLED', 'CANCELED')`

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

// TotalsRepaired is how many running totals (the pending holds', the
// mailbox's pending counts) Open found different from a recount, and
// repaired. It stays 0 unless something bypassed the triggers
// (a hand edit, a write path that breaks their rule): Open logs each at
// ERROR.
func (s *Store) TotalsRepaired() int { return s.totalsRepaired }

// recountTotals compares the running total with a recount before the writer
// starts, and repairs it if it differs. It reads every unresolved hold once
// (about 10 ms at 10,000), in a read transaction: a second process opening
// the file (a tool, a test) takes the write lock only to repair.
func (s *Store) recountTotals(ctx context.Context) error {
	kept, want, err := s.readPending(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil || kept == want {
		return err
	}
	// Again under the write lock, and repair.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if kept, want, err = readPending(ctx, tx); err != nil || kept == want {
		return err
	}
	s.log.Error("running total of pending holds was wrong: repaired",
		"kept_amount_msat", int64(kept.AmountMsat), "kept_count", kept.Count,
		"recount_amount_msat", want.AmountMsat, "recount_count", want.Count)
	if _, err := tx.ExecContext(ctx, `UPDATE sender_totals SET
		pending_amount_msat = ?, pending_count = ? WHERE id = 1`,
		int64(want.AmountMsat), want.Count); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.totalsRepaired++
	return nil
}

// Each direction of the comparison of the mailbox's running pending counts
// with a recount: a row in one and not the other is a difference.
const (
	mailboxRecountSQL = `SELECT receiver_key, sender_lsp, COUNT(*)
		FROM receiver_mailbox INDEXED BY receiver_mailbox_pending
		WHERE state = 'pending' GROUP BY receiver_key, sender_lsp`
	mailboxKeptSQL = `SELECT receiver_key, sender_lsp, pending
		FROM receiver_pending_counts WHERE pending <> 0`
	mailboxDiffSQL = `SELECT (SELECT COUNT(*) FROM (` + mailboxRecountSQL +
		` EXCEPT ` + mailboxKeptSQL + `)) + (SELECT COUNT(*) FROM (` +
		mailboxKeptSQL + ` EXCEPT ` + mailboxRecountSQL + `))`
)

// recountMailbox is recountTotals for the receiver mailbox's running
// pending counts: one pass over the pending items (a partial index).
func (s *Store) recountMailbox(ctx context.Context) error {
	var diff int
	if err := s.db.QueryRowContext(ctx, mailboxDiffSQL).Scan(&diff); err != nil || diff == 0 {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, mailboxDiffSQL).Scan(&diff); err != nil || diff == 0 {
		return err
	}
	s.log.Error("running counts of pending mailbox items were wrong: repaired",
		"rows_differing", diff)
	if _, err := tx.ExecContext(ctx, "DELETE FROM receiver_pending_counts"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO receiver_pending_counts
		(receiver_key, sender_lsp, pending) `+mailboxRecountSQL); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.totalsRepaired++
	return nil
}

func (s *Store) readPending(ctx context.Context, opts *sql.TxOptions) (kept, want Pending, err error) {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return kept, want, err
	}
	defer tx.Rollback()
	return readPending(ctx, tx)
}

// readPending reads the running total as kept and as recounted.
func readPending(ctx context.Context, tx *sql.Tx) (kept, want Pending, err error) {
	// A broken total may be negative: read it signed.
	var amount int64
	if err = tx.QueryRowContext(ctx, `SELECT pending_amount_msat, pending_count
		FROM sender_totals WHERE id = 1`).Scan(&amount, &kept.Count); err != nil {
		return kept, want, fmt.Errorf("read pending total: %w", err)
	}
	kept.AmountMsat = lnwire.MilliSatoshi(amount)
	if err = tx.QueryRowContext(ctx, recountPendingSQL).Scan(&want.AmountMsat,
		&want.Count); err != nil {
		return kept, want, fmt.Errorf("recount pending: %w", err)
	}
	return kept, want, nil
}
