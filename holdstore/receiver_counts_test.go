package holdstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// mailboxItem reserves an invoice of receiver for hold n of lsp and stores
// its mailbox item in state (with a reason where the state needs one).
func mailboxItem(t testing.TB, s *Store, receiver, lsp route.Vertex, n uint32,
	state MailboxState) *MailboxItem {

	t.Helper()
	inv := invoiceOf(receiver, 0, 0, testStart.Add(48*time.Hour))
	binary.BigEndian.PutUint32(inv.PaymentHash[2:], n)
	addInvoices(t, s, inv)
	var hold ID
	binary.BigEndian.PutUint32(hold[:], n)
	it := heldItem(inv, lsp, hold)
	it.State = state
	if state == MailboxRefused {
		it.Reason = "mailbox_full"
	}
	err := s.Update(context.Background(), func(tx *Tx) error {
		if _, err := tx.ReserveFirst(receiver, 0, testStart, lsp, hold, 1000); err != nil {
			return err
		}
		return tx.AddMailboxItem(it)
	})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// checkMailboxCounts compares CountPending, for every receiver and every
// sender LSP of each, with a count of the pending items.
func checkMailboxCounts(t testing.TB, s *Store, receivers, lsps []route.Vertex) {
	t.Helper()
	ctx := context.Background()
	count := func(q string, args ...any) int {
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM receiver_mailbox "+
			"WHERE state = 'pending' AND "+q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	err := s.Update(ctx, func(tx *Tx) error {
		for _, r := range receivers {
			got, err := tx.CountPending(r, nil)
			if err != nil {
				return err
			}
			if want := count("receiver_key = ?", r[:]); got != want {
				t.Errorf("receiver %x: CountPending %d, a count %d", r[:2], got, want)
			}
			for _, l := range lsps {
				got, err := tx.CountPending(r, &l)
				if err != nil {
					return err
				}
				if want := count("receiver_key = ? AND sender_lsp = ?", r[:], l[:]); got != want {
					t.Errorf("receiver %x, LSP %x: CountPending %d, a count %d",
						r[:2], l[:2], got, want)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// The running counts follow every way an item enters or leaves pending: an
// item stored pending or refused, a change of state, an expiry sweep, a
// release refused back to pending; other changes (flags) leave them be.
func TestMailboxPendingCounts(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	alice, bob := registered(t, s, 1), registered(t, s, 2)
	x, y := vertex(0xa), vertex(0xb)
	receivers, lsps := []route.Vertex{alice, bob}, []route.Vertex{x, y}
	check := func() { t.Helper(); checkMailboxCounts(t, s, receivers, lsps) }

	var items []*MailboxItem
	for i, c := range []struct {
		r, l  route.Vertex
		state MailboxState
	}{{alice, x, MailboxPending}, {alice, x, MailboxPending}, {alice, y, MailboxPending},
		{alice, y, MailboxRefused}, {bob, x, MailboxPending}, {bob, y, MailboxRefused}} {
		items = append(items, mailboxItem(t, s, c.r, c.l, uint32(i), c.state))
	}
	check()

	change := func(it *MailboxItem, to MailboxState, release []byte) {
		t.Helper()
		err := s.Update(ctx, func(tx *Tx) error {
			return tx.ChangeMailboxItem(MailboxChange{SenderLSP: it.SenderLSP,
				HoldID: it.HoldID, From: it.State, To: to, Reason: "because",
				Release: release})
		})
		if err != nil {
			t.Fatal(err)
		}
		it.State = to
		check()
	}
	change(items[0], MailboxPending, nil) // pending -> pending: no change
	change(items[0], MailboxReleased, []byte{1})
	change(items[0], MailboxPending, nil) // the release refused
	change(items[0], MailboxReleased, []byte{2})
	change(items[0], MailboxSettled, nil)
	change(items[2], MailboxCanceled, nil)

	// Flags set on pending items change no count.
	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.MarkWoken(alice, testStart.Add(time.Hour)); err != nil {
			return err
		}
		return tx.MarkWarned(items)
	})
	if err != nil {
		t.Fatal(err)
	}
	check()

	// The deadline sweep expires the rest.
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.ExpireDue(testStart.Add(2*time.Hour), 0, "deadline")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.State == MailboxPending {
			it.State = MailboxExpired
		}
	}
	check()
	err = s.Update(ctx, func(tx *Tx) error {
		n, err := tx.CountPending(alice, nil)
		if err == nil && n != 0 {
			t.Errorf("alice has %d pending after the sweep", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	change(items[1], MailboxReleased, []byte{3}) // expired -> released
	change(items[1], MailboxPending, nil)        // refused back: pending again
	if n := s.TotalsRepaired(); n != 0 {
		t.Fatalf("repaired %d totals", n)
	}

	// An item's receiver or sender LSP cannot change under the counts.
	_, err = s.db.ExecContext(ctx, "UPDATE receiver_mailbox SET sender_lsp = ?",
		y[:])
	if err == nil || !strings.Contains(err.Error(), "cannot change") {
		t.Fatalf("moving items to another sender LSP: %v", err)
	}
}

// Migration 0009 on a file of version 8 counts the pending items already
// there, and its triggers go on from there.
func TestMigration0009CountsExistingItems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v8.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	alice, x, y := registered(t, s, 1), vertex(0xa), vertex(0xb)
	for i, l := range []route.Vertex{x, x, y} {
		mailboxItem(t, s, alice, l, uint32(i), MailboxPending)
	}
	mailboxItem(t, s, alice, y, 3, MailboxRefused)
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"DROP TRIGGER receiver_mailbox_pending_insert",
		"DROP TRIGGER receiver_mailbox_pending_state",
		"DROP TRIGGER receiver_mailbox_pending_delete",
		"DROP TRIGGER receiver_mailbox_keys_fixed",
		"DROP TABLE receiver_pending_counts",
		"PRAGMA user_version = 8",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	if s, err = Open(ctx, Config{Path: path}); err != nil {
		t.Fatalf("migrating a version 8 file: %v", err)
	}
	defer s.Close()
	if n := s.TotalsRepaired(); n != 0 {
		t.Fatalf("Open repaired %d totals right after the migration", n)
	}
	receivers, lsps := []route.Vertex{alice}, []route.Vertex{x, y}
	checkMailboxCounts(t, s, receivers, lsps)
	mailboxItem(t, s, alice, y, 4, MailboxPending)
	checkMailboxCounts(t, s, receivers, lsps)
}

// Counts wrong on disk are recounted, repaired and logged at Open.
func TestOpenRepairsWrongMailboxCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "asynclsp.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	alice, x, y := registered(t, s, 1), vertex(0xa), vertex(0xb)
	mailboxItem(t, s, alice, x, 0, MailboxPending)
	mailboxItem(t, s, alice, x, 1, MailboxPending)
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE receiver_pending_counts SET pending = 7;
		INSERT INTO receiver_pending_counts VALUES (?, ?, 3)`, alice[:], y[:]); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var log bytes.Buffer
	s, err = Open(ctx, Config{Path: path, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.TotalsRepaired(); n != 1 {
		t.Fatalf("repaired %d, want 1", n)
	}
	checkMailboxCounts(t, s, []route.Vertex{alice}, []route.Vertex{x, y})
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(),
		"running counts of pending mailbox items were wrong: repaired") {
		t.Fatalf("log lacks the repair at ERROR:\n%s", log.String())
	}
}
