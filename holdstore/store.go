// Package holdstore is the durable state of an asynclspd: one SQLite file
// (modernc.org/sqlite, no cgo) in WAL mode with synchronous=FULL, holding the
// sender LSP's holds, their state machine, and the event log subscribers
// resume from.
//
// Every write goes through one writer goroutine. Writes that arrive while a
// commit is in progress are committed together in the next transaction (group
// commit), each inside its own savepoint, so one failing write never takes its
// neighbours down and every caller returns only once its write is durable.
//
// Floor: ground. Owns the SQLite file, its schema and every state machine's
// table; it imports nothing of asynclsp's.
package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/clock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors of the store. Match them with errors.Is.
var (
	// ErrNotFound: no hold with that id or payment hash.
	ErrNotFound = errors.New("hold not found")

	// ErrDuplicate: a hold with that payment hash (or request key) exists.
	ErrDuplicate = errors.New("hold already exists")

	// ErrIllegalTransition: the state machine has no such edge.
	ErrIllegalTransition = errors.New("illegal transition")

	// ErrStaleTransition: the hold is no longer in the state the caller
	// expected (another writer moved it first).
	ErrStaleTransition = errors.New("stale transition")

	// ErrInvalid: the caller's input breaks a rule of the store.
	ErrInvalid = errors.New("invalid hold data")

	// ErrCorrupt: the file is not a database, or a damaged one.
	ErrCorrupt = errors.New("database file is corrupt or not a database")

	// ErrUnwritable: the file or its directory cannot be written.
	ErrUnwritable = errors.New("database file cannot be written")

	// ErrTooNew: the file was written by a newer asynclsp.
	ErrTooNew = errors.New("database schema is newer than this binary")

	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
)

// Config tunes a store. The zero value (with Path set) is what a daemon wants.
type Config struct {
	// Path of the database file; created with its directory if missing.
	Path string

	// BusyTimeout is how long SQLite waits for a lock another process
	// holds before giving up. Default 5s.
	BusyTimeout time.Duration

	// MaxBatch caps how many queued writes share one transaction.
	// Default 512.
	MaxBatch int

	// Clock stamps every row. Default: the wall clock.
	Clock clock.Clock

	// Logger. Default: slog.Default().
	Logger *slog.Logger
}

// Store is an open holdstore. It is safe for concurrent use.
type Store struct {
	cfg    Config
	db     *sql.DB
	wconn  *sql.Conn
	stmts  *writeStmts
	cache  stmtCache
	clock  clock.Clock
	log    *slog.Logger
	writes chan *writeReq
	quit   chan struct{}
	wg     sync.WaitGroup

	// events broadcasts "new events committed" by closing the channel and
	// replacing it.
	notifyMu sync.Mutex
	notify   chan struct{}

	closeOnce sync.Once

	// totalsRepaired is how many running totals Open had to repair.
	totalsRepaired int
}

// Open opens (creating if needed) the database at cfg.Path, applies pending
// migrations and starts the writer. A file that is not a database, one from
// a newer asynclsp, or one that cannot be written gives a clear error.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("%w: no database path", ErrInvalid)
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnwritable, cfg.Path, err)
	}
	// The file holds token hashes and preimages: readable by its owner
	// only. SQLite gives the -wal and -shm files the same mode.
	if f, err := os.OpenFile(cfg.Path, os.O_CREATE|os.O_RDONLY, 0o600); err == nil {
		f.Close()
	}

	db, err := sql.Open("sqlite", dsn(cfg))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Path, err)
	}
	// One connection writes; the rest serve concurrent readers, which WAL
	// lets run beside the writer.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)

	s := &Store{
		cfg:    cfg,
		db:     db,
		clock:  cfg.Clock,
		log:    cfg.Logger.With("component", "holdstore"),
		writes: make(chan *writeReq),
		quit:   make(chan struct{}),
		notify: make(chan struct{}),
	}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, classify(cfg.Path, err)
	}
	s.wg.Add(1)
	go s.writeLoop()
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	// Reading the schema version makes SQLite read the file header, so a
	// file that is not a database fails here rather than later.
	if err := migrate(ctx, s.db); err != nil {
		return err
	}
	if err := s.recountTotals(ctx); err != nil {
		return fmt.Errorf("recount totals: %w", err)
	}
	if err := s.recountMailbox(ctx); err != nil {
		return fmt.Errorf("recount pending mailbox items: %w", err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -65536"); err != nil {
		conn.Close()
		return err
	}
	stmts, err := prepareWriteStmts(ctx, conn)
	if err != nil {
		conn.Close()
		return err
	}
	s.wconn, s.stmts = conn, stmts
	return nil
}

// dsn builds the modernc.org/sqlite connection string: the pragmas run on
// every new connection, and every transaction begins IMMEDIATE so a writer
// takes the write lock up front instead of failing to upgrade later.
func dsn(cfg Config) string {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"foreign_keys(ON)",
		"temp_store(MEMORY)",
		// 8 MiB of page cache per reader: SQLite's cache is memory of
		// the process outside Go's heap, 8 connections of it, and with
		// 10,000 held payments a reader that scans once (recovery, a
		// scrape) would keep the whole file. The writer, whose pages are
		// hot, takes 64 MiB (init).
		"cache_size(-8192)",
		fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()),
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + cfg.Path + "?" + q.Encode()
}

// classify turns the driver's errors at open into the store's own.
func classify(path string, err error) error {
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		switch serr.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR:
			return fmt.Errorf("%w: %s: %v", ErrUnwritable, path, err)
		}
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// Close stops the writer, after the write in progress, and closes the file.
// Writes queued behind it fail with ErrClosed.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.quit)
		s.wg.Wait()
		s.stmts.close()
		s.cache.close()
		err = errors.Join(s.wconn.Close(), s.db.Close())
	})
	return err
}

// Path is the database file.
func (s *Store) Path() string { return s.cfg.Path }

// Changed returns a channel that is closed once events newer than the call
// have been committed. Subscribers read Events, then wait on Changed.
func (s *Store) Changed() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

func (s *Store) broadcast() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}
