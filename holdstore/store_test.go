package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lightningnetwork/lnd/lntypes"
	"strings"
	"testing"
	"time"
)

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	h, p := created(t, s)
	if _, err := s.Apply(ctx, step(h.ID, p, StateCreated, StateHeld, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := mustGet(t, s, h.ID)
	if got.State != StateHeld || got.IncomingExpiry != 1200 ||
		got.DeadlineHeight != 1100 || got.PaymentHash != h.PaymentHash ||
		got.ReleaseSecret != h.ReleaseSecret ||
		got.ReceiverInvoiceAmountMsat != h.ReceiverInvoiceAmountMsat ||
		!got.DeadlineTime.Equal(h.DeadlineTime) {
		t.Fatalf("after reopen: %+v", got)
	}
	for _, f := range []string{path, path + "-wal"} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", f, st.Mode().Perm(), err)
		}
	}
	var mode, sync string
	s.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	s.db.QueryRow("PRAGMA synchronous").Scan(&sync)
	if mode != "wal" || sync != "2" {
		t.Fatalf("journal_mode=%s synchronous=%s, want wal and 2 (FULL)", mode, sync)
	}
}

func TestOpenCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	junk := []byte(strings.Repeat("this is not a database. ", 400))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Path: path})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Fatal("opening a corrupt file changed it")
	}
}

func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	// A regular file where the database's directory should be: no process,
	// root included, can create the database there.
	blocker := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Path: filepath.Join(blocker, "a.db")})
	if !errors.Is(err, ErrUnwritable) {
		t.Fatalf("err = %v, want ErrUnwritable", err)
	}

	// A directory where the database file should be.
	path := filepath.Join(dir, "a-dir.db")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Config{Path: path})
	if !errors.Is(err, ErrUnwritable) {
		t.Fatalf("err = %v, want ErrUnwritable", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	newer := SchemaVersion() + 1
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", newer)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(ctx, Config{Path: path})
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("err = %v, want ErrTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(newer)) {
		t.Fatalf("error %q does not say which version", err)
	}
}

func TestMigrationsAreNumberedInOrder(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("%d migrations, schema version %d", len(ms), SchemaVersion())
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Fatalf("migration %s has number %d at position %d", m.name,
				m.version, i+1)
		}
	}
}

func TestClosedStoreRefusesWrites(t *testing.T) {
	s, _ := openTest(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create(context.Background(), testHold(randomPreimage(t)))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestCreateRefusesDuplicates(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	p := randomPreimage(t)
	first := testHold(p)
	first.RequestKey = "req-1"
	if _, err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}

	sameHash := testHold(p)
	if _, err := s.Create(ctx, sameHash); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same payment hash: err = %v, want ErrDuplicate", err)
	}
	sameKey := testHold(randomPreimage(t))
	sameKey.RequestKey = "req-1"
	if _, err := s.Create(ctx, sameKey); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("same request key: err = %v, want ErrDuplicate", err)
	}
	otherOwner := testHold(randomPreimage(t))
	otherOwner.Owner, otherOwner.RequestKey = "wallet-2", "req-1"
	if _, err := s.Create(ctx, otherOwner); err != nil {
		t.Fatalf("same key, other owner: %v", err)
	}
	got, err := s.GetByRequestKey(ctx, "wallet-1", "req-1")
	if err != nil || got.ID != first.ID {
		t.Fatalf("GetByRequestKey = %v, %v", got, err)
	}
	if _, err := s.GetByHash(ctx, lntypes.Hash(randomPreimage(t))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: err = %v, want ErrNotFound", err)
	}
	checkLog(t, s)
}

func TestCreateValidates(t *testing.T) {
	s, _ := openTest(t)
	for name, mutate := range map[string]func(*Hold){
		"zero amount":   func(h *Hold) { h.AmountMsat = 0 },
		"no invoice":    func(h *Hold) { h.ReceiverInvoice = "" },
		"bad policy":    func(h *Hold) { h.RetryPolicy = "sometimes" },
		"no deadline":   func(h *Hold) { h.DeadlineTime = time.Time{} },
		"no cltv delta": func(h *Hold) { h.CltvDelta = 0 },
	} {
		h := testHold(randomPreimage(t))
		mutate(h)
		if _, err := s.Create(context.Background(), h); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
