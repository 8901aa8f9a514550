package holdstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"
)

// writeStmts are the hot write statements, prepared once on the write
// connection, which runs every transaction itself (withTx).
type writeStmts struct {
	insertHold  *sql.Stmt
	insertEvent *sql.Stmt
}

// insertEventSQL appends one event.
const insertEventSQL = `INSERT INTO hold_events
		(hold_id, from_state, to_state, reason, final, at)
		VALUES (?, ?, ?, ?, ?, ?)`

// transitionUpdate builds the compare-and-set of a transition: an UPDATE of
// the hold in state t.From that sets only the columns t changes. SQLite
// rewrites every index whose columns (or partial-index condition) appear in
// the SET list, whatever the values: naming only what changes keeps a
// release (state, updated_at, attempts) from rewriting the four indexes
// over resolved, deadlines and created_at, which is a third of its commit.
// A reason replaces the stored one only if it ranks higher. There are few
// shapes, so the statement cache holds each once. Entering SETTLED names
// preimage and entering CANCELED failure_reason: the pending total's trigger
// (migration 0007) is coded only into UPDATEs that name one of them.
//
// With blank, the UPDATE matches only a hold with no stored reason, and
// returns nothing: t adds none, so the reason after it is blank too, and
// the caller needs only the count of rows changed, not a row to scan.
func transitionUpdate(t Transition, attempts int, preimage, hash []byte,
	now time.Time, blank bool) (string, []any) {

	var q strings.Builder
	q.WriteString("UPDATE holds SET state = ?, updated_at = ?")
	args := []any{string(t.To), nanos(now)}
	set := func(clause string, vals ...any) {
		q.WriteString(", ")
		q.WriteString(clause)
		args = append(args, vals...)
	}
	if t.Reason != ReasonNone {
		set("failure_reason = CASE WHEN ? > ("+rankSQL+") THEN ? ELSE failure_reason END",
			t.Reason.Rank(), string(t.Reason))
	}
	if t.IncomingExpiry > 0 {
		set("incoming_expiry = ?", t.IncomingExpiry)
	}
	if t.DeadlineHeight > 0 {
		set("deadline_height = ?", t.DeadlineHeight)
	}
	if attempts > 0 {
		set("attempts = attempts + ?", attempts)
	}
	if preimage != nil {
		set("preimage = ?", preimage)
	}
	if t.OutboundFeeMsat > 0 {
		set("outbound_fee_msat = ?", int64(t.OutboundFeeMsat))
	}
	if t.Resolved {
		// Only a final state is resolved, and no transition leaves one,
		// so resolved never goes back to 0.
		set("resolved = 1")
	}
	q.WriteString(" WHERE id = ? AND state = ?")
	args = append(args, t.ID[:], string(t.From))
	if hash != nil {
		q.WriteString(" AND payment_hash = ?")
		args = append(args, hash)
	}
	if blank {
		q.WriteString(" AND failure_reason = ''")
	} else {
		q.WriteString(" RETURNING failure_reason")
	}
	return q.String(), args
}

// rankSQL is Reason.Rank as SQL over the stored failure_reason, built from the
// same Reasons list, so the precedence has one definition.
var rankSQL = func() string {
	var b strings.Builder
	b.WriteString("CASE failure_reason")
	for _, r := range Reasons {
		fmt.Fprintf(&b, " WHEN '%s' THEN %d", r, r.Rank())
	}
	b.WriteString(" ELSE 0 END")
	return b.String()
}()

func prepareWriteStmts(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	var (
		s   writeStmts
		err error
	)
	prep := func(dst **sql.Stmt, query string) {
		if err == nil {
			*dst, err = conn.PrepareContext(ctx, query)
		}
	}
	prep(&s.insertHold, `INSERT INTO holds (id, payment_hash, owner,
		request_key, amount_msat, fee_msat, receiver_key, receiver_lsp,
		receiver_invoice, receiver_invoice_expiry,
		receiver_invoice_amount_msat, hold_invoice, cltv_delta, retry_policy,
		release_secret, deadline_time, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)

	prep(&s.insertEvent, insertEventSQL)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return &s, nil
}

func (s *writeStmts) close() {
	for _, st := range []*sql.Stmt{s.insertHold, s.insertEvent} {
		if st != nil {
			st.Close()
		}
	}
}

// maxCachedStmts bounds the statement cache: a caller that builds its SQL
// from data would otherwise grow it without end.
const maxCachedStmts = 256

// stmtCache keeps the statements write functions run, prepared once on the
// write connection.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, conn *sql.Conn, query string) *sql.Stmt {
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
	st, err := conn.PrepareContext(ctx, query)
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

// preparedStmt runs a statement on the write connection, prepared if
// possible.
type preparedStmt struct {
	conn  *sql.Conn
	st    *sql.Stmt
	query string
}

func (p preparedStmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	if p.st == nil {
		return p.conn.ExecContext(ctx, p.query, args...)
	}
	return p.st.ExecContext(ctx, args...)
}

func (p preparedStmt) QueryRowContext(ctx context.Context, args ...any) *sql.Row {
	if p.st == nil {
		return p.conn.QueryRowContext(ctx, p.query, args...)
	}
	return p.st.QueryRowContext(ctx, args...)
}

func (p preparedStmt) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	if p.st == nil {
		return p.conn.QueryContext(ctx, p.query, args...)
	}
	return p.st.QueryContext(ctx, args...)
}

// prepared is query as a statement of the transaction.
func (t *Tx) prepared(query string) preparedStmt {
	return preparedStmt{conn: t.conn, st: t.store.cache.get(t.ctx, t.conn, query), query: query}
}
