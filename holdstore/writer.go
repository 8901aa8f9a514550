package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// writeReq is one caller's write, waiting for the writer.
type writeReq struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error

	// clean says fn writes nothing when it fails with one of the store's
	// refusals (see refused), so in a batch it needs no savepoint. Only
	// the store's own write methods are clean; they may be run twice.
	clean bool
}

// Tx is a write transaction as a write function sees it. Its methods are the
// store's write primitives; they run inside the caller's savepoint.
type Tx struct {
	ctx    context.Context
	store  *Store
	conn   *sql.Conn // the write connection, inside BEGIN ... COMMIT
	stmts  *writeStmts
	now    time.Time
	events int
}

// Exec runs a statement in the transaction, for writers of other tables that
// share the store's file and its single writer. Statements are prepared once
// and reused (see Store.prepared).
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) {
	return t.prepared(query).ExecContext(t.ctx, args...)
}

// QueryRow runs a query in the transaction.
func (t *Tx) QueryRow(query string, args ...any) *sql.Row {
	return t.prepared(query).QueryRowContext(t.ctx, args...)
}

// Query runs a query in the transaction.
func (t *Tx) Query(query string, args ...any) (*sql.Rows, error) {
	return t.prepared(query).QueryContext(t.ctx, args...)
}

// Now is the time stamped on everything the transaction writes.
func (t *Tx) Now() time.Time { return t.now }

// Update runs fn in a write transaction and returns once it is durable. fn's
// writes are atomic: if fn returns an error, none of them stay. Writes that
// arrive together share one commit (group commit); each runs in its own
// savepoint, so they cannot see each other's failures.
//
// fn must not keep the Tx, and must not call the store's write methods.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.update(ctx, false, fn)
}

// update is Update for the store's own writes, clean if fn writes nothing
// when it refuses (see writeReq.clean).
func (s *Store) update(ctx context.Context, clean bool, fn func(*Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), clean: clean}
	select {
	case s.writes <- req:
	case <-s.quit:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once the writer has the request, its outcome is decided by the
	// writer alone; wait for it even if ctx ends, so the caller never
	// mistakes a committed write for a failed one.
	return <-req.done
}

// writeLoop owns the write connection. It takes a waiting write, everything
// else already queued behind it (up to MaxBatch), and commits them together.
func (s *Store) writeLoop() {
	defer s.wg.Done()
	batch := make([]*writeReq, 0, s.cfg.MaxBatch)
	for {
		select {
		case req := <-s.writes:
			batch = append(batch[:0], req)
		fill:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case req := <-s.writes:
					batch = append(batch, req)
				default:
					break fill
				}
			}
			s.commit(batch)
		case <-s.quit:
			return
		}
	}
}

// commit runs a batch of writes in one transaction and answers each caller.
//
// Clean writes run first and without savepoints: a refusal wrote nothing,
// so it cannot take its neighbours' writes down. The savepoint statements
// are about a tenth of a small write's work. Should a clean write fail any
// other way, what it wrote is not known: the transaction is rolled back and
// the batch run again with a savepoint for every write. Since the clean
// writes go first (writes in one batch are concurrent, so any order is
// theirs), no other write has run by then, and every caller's fn but the
// store's own runs exactly once.
func (s *Store) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	events := 0
	err := s.withTx(func() (err error) {
		events, err = s.runBatch(batch, errs, true)
		return err
	})
	if errors.Is(err, errSavepoints) {
		err = s.withTx(func() (err error) {
			events, err = s.runBatch(batch, errs, false)
			return err
		})
	}
	for i, req := range batch {
		switch {
		case err != nil && errs[i] == nil:
			req.done <- fmt.Errorf("commit: %w", err)
		default:
			req.done <- errs[i]
		}
	}
	if err == nil && events > 0 {
		s.broadcast()
	}
}

// errSavepoints: a clean write failed without refusing; run the batch again
// with savepoints.
var errSavepoints = errors.New("batch needs savepoints")

// runBatch runs every write of batch in the open transaction, recording
// each one's outcome in errs, and returns how many events the successful
// ones appended. With fast, clean writes run first and without savepoints.
func (s *Store) runBatch(batch []*writeReq, errs []error, fast bool) (int, error) {
	events := 0
	now := s.clock.Now()
	run := func(i int, req *writeReq) error {
		errs[i] = nil
		if err := req.ctx.Err(); err != nil {
			errs[i] = err
			return nil
		}
		// The caller's ctx ends nothing once its write runs: the
		// outcome is the writer's alone (update). Without a Done
		// channel, the driver does not start a goroutine per
		// statement to interrupt it.
		t := &Tx{ctx: context.WithoutCancel(req.ctx), store: s, conn: s.wconn,
			stmts: s.stmts, now: now}
		switch {
		case len(batch) == 1:
			// Alone in the transaction: rolling it back undoes
			// exactly this write, no savepoint needed.
			if errs[i] = req.fn(t); errs[i] != nil {
				return errs[i]
			}
		case fast && req.clean:
			errs[i] = req.fn(t)
			if errs[i] != nil && !refused(errs[i]) {
				if isFatal(errs[i]) {
					return errs[i]
				}
				return errSavepoints
			}
		default:
			errs[i] = t.savepoint(func() error { return req.fn(t) })
			if isFatal(errs[i]) {
				return errs[i]
			}
		}
		if errs[i] == nil {
			events += t.events
		}
		return nil
	}
	for pass := range 2 {
		for i, req := range batch {
			// With fast, the clean writes in the first pass, the
			// others in the second; without, all in the first.
			if first := !fast || req.clean; first != (pass == 0) {
				continue
			}
			if err := run(i, req); err != nil {
				return 0, err
			}
		}
	}
	return events, nil
}

// refused reports whether a clean write's error is one of the store's
// refusals, which it returns having written nothing.
func refused(err error) bool {
	return refusedCleanly(err) || errors.Is(err, ErrDuplicate)
}

// withTx begins an immediate transaction on the write connection, retrying
// while another process holds the lock, runs fn and commits.
//
// The transaction is the connection's own BEGIN ... COMMIT, not a sql.Tx:
// database/sql starts a goroutine for every sql.Tx, to roll it back should
// its context end, and binds every statement to it anew, and neither is of
// use to a writer that owns its connection and never cancels a write.
func (s *Store) withTx(fn func() error) error {
	ctx := context.Background()
	var err error
	for attempt := 0; ; attempt++ {
		_, err = s.wconn.ExecContext(ctx, "BEGIN IMMEDIATE")
		if err == nil || !isBusy(err) || attempt == 5 {
			break
		}
		s.log.Warn("database busy, retrying", "attempt", attempt+1)
		select {
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		case <-s.quit:
			return ErrClosed
		}
	}
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(); err != nil {
		s.rollback(ctx)
		return err
	}
	if _, err := s.wconn.ExecContext(ctx, "COMMIT"); err != nil {
		// A failed COMMIT may leave the transaction open (SQLite
		// rolls some failures back itself): end it either way.
		s.rollback(ctx)
		return err
	}
	return nil
}

// rollback ends the open transaction, if SQLite has not already.
func (s *Store) rollback(ctx context.Context) {
	if _, err := s.wconn.ExecContext(ctx, "ROLLBACK"); err != nil &&
		!strings.Contains(err.Error(), "no transaction is active") {
		s.log.Error("rolling back a write failed", "err", err)
	}
}

// savepoint runs fn so that its writes are undone if it fails.
func (t *Tx) savepoint(fn func() error) error {
	if _, err := t.Exec("SAVEPOINT w"); err != nil {
		return err
	}
	err := fn()
	if err != nil {
		if _, rerr := t.Exec("ROLLBACK TO w"); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if _, rerr := t.Exec("RELEASE w"); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

func sqliteCode(err error) int {
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		return serr.Code()
	}
	return 0
}

func isBusy(err error) bool {
	c := sqliteCode(err) & 0xff
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE ||
		c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isFatal reports errors after which the transaction cannot go on: the disk
// or the file failed, not the caller's write.
func isFatal(err error) bool {
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CORRUPT,
		sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_READONLY:
		return true
	}
	return false
}
