package holdstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
)

// writeStmts are the hot write statements. They are prepared on the DB, not
// on the write connection: database/sql re-prepares a connection's statement
// in every transaction, but reuses a DB statement's per-connection handle.
type writeStmts struct {
	insertHold  *sql.Stmt
	transition  *sql.Stmt
	insertEvent *sql.Stmt
}

// insertEventsSQL appends one event; more rows follow for a path.
const insertEventsSQL = `INSERT INTO hold_events
		(hold_id, from_state, to_state, reason, final, at)
		VALUES (?, ?, ?, ?, ?, ?)`

// rankSQL is Reason.Rank as SQL over the stored failure_reason, built from the
// same Reasons list, so the precedence has one definition.
func rankSQL() string {
	var b strings.Builder
	b.WriteString("CASE failure_reason")
	for _, r := range Reasons {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", r, r.Rank())
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}

func prepareWriteStmts(ctx context.Context, db *sql.DB) (*writeStmts, error) {
	var (
		s   writeStmts
		err error
	)
	prep := func(dst **sql.Stmt, query string) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, query)
		}
	}
	prep(&s.insertHold, `INSERT INTO holds (id, payment_hash, owner,
		request_key, amount_msat, fee_msat, receiver_key, receiver_lsp,
		receiver_invoice, receiver_invoice_expiry,
		receiver_invoice_amount_msat, hold_invoice, cltv_delta, retry_policy,
		release_secret, deadline_time, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)

	// The compare-and-set of a transition. A reason replaces the stored one
	// only if it ranks higher; zero fields leave their columns alone.
	prep(&s.transition, `UPDATE holds SET
		state = ?1,
		updated_at = ?2,
		failure_reason = CASE WHEN ?3 > (`+rankSQL()+`) THEN ?4
			ELSE failure_reason END,
		incoming_expiry = CASE WHEN ?5 > 0 THEN ?5 ELSE incoming_expiry END,
		deadline_height = CASE WHEN ?6 > 0 THEN ?6 ELSE deadline_height END,
		attempts = attempts + ?7,
		preimage = COALESCE(?8, preimage),
		outbound_fee_msat = CASE WHEN ?9 > 0 THEN ?9
			ELSE outbound_fee_msat END,
		resolved = ?10
		WHERE id = ?11 AND state = ?12
		AND (?13 IS NULL OR payment_hash = ?13)
		RETURNING failure_reason`)
	prep(&s.insertEvent, insertEventsSQL)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &s, nil
}

func (s *writeStmts) close() {
	for _, st := range []*sql.Stmt{s.insertHold, s.transition, s.insertEvent} {
		if st != nil {
			st.Close()
		}
	}
}

// stmt binds a prepared statement to the transaction.
func (t *Tx) stmt(st *sql.Stmt) *sql.Stmt {
	return t.tx.StmtContext(t.ctx, st)
}

// maxCachedStmts bounds the statement cache: a caller that builds its SQL
// from data would otherwise grow it without end.
const maxCachedStmts = 256

// stmtCache keeps the statements write functions run, prepared once on the
// DB; database/sql then reuses each one's handle on the write connection.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	if len(c.stmts) >= maxCachedStmts {
		return nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		// The error comes back when the statement runs unprepared.
		return nil
	}
	c.stmts[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
}

// preparedStmt runs a statement in a transaction, prepared if possible.
type preparedStmt struct {
	tx    *sql.Tx
	st    *sql.Stmt
	query string
}

func (p preparedStmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	if p.st == nil {
		return p.tx.ExecContext(ctx, p.query, args...)
	}
	return p.tx.StmtContext(ctx, p.st).ExecContext(ctx, args...)
}

func (p preparedStmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	if p.st == nil {
		return p.tx.QueryRowContext(ctx, p.query, args...)
	}
	return p.tx.StmtContext(ctx, p.st).QueryRowContext(ctx, args...)
}

func (p preparedStmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	if p.st == nil {
		return p.tx.QueryContext(ctx, p.query, args...)
	}
	return p.tx.StmtContext(ctx, p.st).QueryContext(ctx, args...)
}

// prepared is query as a statement of the transaction.
func (t *Tx) prepared(query string) preparedStmt {
	return preparedStmt{tx: t.tx, st: t.store.cache.get(t.ctx, t.store.db, query), query: query}
}
