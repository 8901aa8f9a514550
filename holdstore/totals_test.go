package holdstore

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnwire"
)

// Every way a hold is written moves the totals in the same commit: create,
// a transition, a path, a batch, a retry that stays FORWARDING, resolving.
func TestTotalsFollowEveryWrite(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	want := func(amount lnwire.MilliSatoshi, count int) {
		t.Helper()
		p, err := s.PendingTotals(ctx)
		if err != nil || p != (Pending{AmountMsat: amount, Count: count}) {
			t.Fatalf("pending %+v (%v), want %d msat in %d holds", p, err, amount, count)
		}
		checkTotals(t, s)
	}
	want(0, 0)

	a, pa := created(t, s)
	want(100_000_000, 1)
	b, pb := holdIn(t, s, StateForwarding)
	want(200_000_000, 2)

	// A failed attempt retried: FORWARDING -> FORWARDING, with a reason.
	if _, err := s.Apply(ctx, step(b.ID, pb, StateForwarding, StateForwarding,
		ReasonNoRoute)); err != nil {
		t.Fatal(err)
	}
	want(200_000_000, 2)

	// A refused transition writes nothing, totals included.
	if _, err := s.Apply(ctx, step(a.ID, pa, StateHeld, StateCanceled, ReasonDeadline)); err == nil {
		t.Fatal("a stale transition was applied")
	}
	want(200_000_000, 2)

	// A path, then a batch that settles one and cancels the other.
	if _, err := s.ApplyPath(ctx, step(a.ID, pa, StateCreated, StateHeld, ReasonNone),
		step(a.ID, pa, StateHeld, StateReleased, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	want(200_000_000, 2)
	res, err := s.ApplyBatch(ctx, []Transition{
		step(b.ID, pb, StateForwarding, StateSettled, ReasonNone),
		step(a.ID, pa, StateReleased, StateCanceled, ReasonDeadline),
	})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("batch: %v %+v", err, res)
	}
	want(0, 0)

	// Resolving a final hold changes nothing counted.
	if err := s.MarkResolved(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	want(0, 0)

	// Nor does recording the hold invoice.
	c := testHold(randomPreimage(t))
	c.HoldInvoice, c.AmountMsat = "", 7_000
	if _, err := s.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHoldInvoice(ctx, c.ID, "lnbcrt1other"); err != nil {
		t.Fatal(err)
	}
	want(7_000, 1)

	// A path that ends final, straight from CREATED, resolved at once.
	d, pd := created(t, s)
	want(100_007_000, 2)
	if _, err := s.ApplyPath(ctx, step(d.ID, pd, StateCreated, StateHeld, ReasonNone),
		step(d.ID, pd, StateHeld, StateReleased, ReasonNone),
		step(d.ID, pd, StateReleased, StateForwarding, ReasonNone),
		Transition{ID: d.ID, From: StateForwarding, To: StateSettled, Preimage: &pd,
			Resolved: true}); err != nil {
		t.Fatal(err)
	}
	want(7_000, 1)
}

// The totals assume an amount never changes; the database refuses to.
func TestHoldAmountIsFixed(t *testing.T) {
	s, _ := openTest(t)
	h, _ := created(t, s)
	err := s.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.Exec("UPDATE holds SET amount_msat = amount_msat + 1 WHERE id = ?", h.ID[:])
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "amount_msat cannot change") {
		t.Fatalf("changing an amount: %v", err)
	}
	checkTotals(t, s)
}

// rawHold inserts a hold as a version 6 binary would have, in state st.
func rawHold(t *testing.T, db *sql.DB, amount lnwire.MilliSatoshi, st State, resolved bool) {
	t.Helper()
	p := randomPreimage(t)
	h := testHold(p)
	var preimage []byte
	reason := ""
	switch st {
	case StateSettled:
		preimage = p[:]
	case StateCanceled:
		reason = string(ReasonDeadline)
	}
	_, err := db.Exec(`INSERT INTO holds (id, payment_hash, owner, amount_msat,
		fee_msat, receiver_key, receiver_lsp, receiver_invoice,
		receiver_invoice_expiry, cltv_delta, retry_policy, release_secret,
		deadline_time, state, failure_reason, preimage, resolved, created_at,
		updated_at) VALUES (?, ?, 'w', ?, 0, ?, ?, 'lnbcrt1', 1, 1008, 'patient',
		?, 1, ?, ?, ?, ?, 1, 1)`, h.ID[:], h.PaymentHash[:], int64(amount),
		h.ReceiverKey[:], h.ReceiverLSP[:], h.ReleaseSecret[:], string(st), reason,
		preimage, boolInt(resolved))
	if err != nil {
		t.Fatal(err)
	}
}

// Migration 0007 on a file of version 6 counts the holds already there:
// pending is the unresolved, non-final ones, as the capacity check summed.
func TestMigration0007CountsExistingHolds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v6.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:6] {
		if err := apply(ctx, db, m); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	rawHold(t, db, 1_000, StateCreated, false)
	rawHold(t, db, 20_000, StateHeld, false)
	rawHold(t, db, 300_000, StateHeld, false)
	rawHold(t, db, 4_000_000, StateForwarding, false)
	rawHold(t, db, 50_000_000, StateSettled, true)
	rawHold(t, db, 600_000_000, StateCanceled, false)
	rawHold(t, db, 7_000_000_000, StateCanceled, true)
	db.Close()

	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatalf("migrating a version 6 file: %v", err)
	}
	defer s.Close()
	p, err := s.PendingTotals(ctx)
	if err != nil || p != (Pending{AmountMsat: 4_321_000, Count: 4}) {
		t.Fatalf("migrated pending %+v, %v", p, err)
	}
	if n := s.TotalsRepaired(); n != 0 {
		t.Fatalf("Open repaired %d totals right after the migration", n)
	}
	checkTotals(t, s)
	// And the triggers go on from there.
	holdIn(t, s, StateReleased)
	holdIn(t, s, StateCanceled)
	checkTotals(t, s)
	var version int
	s.db.QueryRow("PRAGMA user_version").Scan(&version)
	if version != SchemaVersion() || version < 7 {
		t.Fatalf("version %d", version)
	}
}

// Totals wrong on disk (a hand edit, a bug that bypassed the triggers) are
// recounted, repaired and logged at Open, and counted in TotalsRepaired.
func TestOpenRepairsWrongTotals(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "asynclsp.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	holdIn(t, s, StateHeld)
	holdIn(t, s, StateHeld)
	holdIn(t, s, StateSettled)
	if n := s.TotalsRepaired(); n != 0 {
		t.Fatalf("a fresh store repaired %d totals", n)
	}
	s.Close()

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE sender_totals SET pending_amount_msat = -5, pending_count = 9"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var log bytes.Buffer
	s, err = Open(ctx, Config{Path: path, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.TotalsRepaired(); n != 1 {
		t.Fatalf("repaired %d totals, want 1", n)
	}
	checkTotals(t, s)
	if p, _ := s.PendingTotals(ctx); p != (Pending{AmountMsat: 200_000_000, Count: 2}) {
		t.Fatalf("repaired pending %+v", p)
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(),
		"running total of pending holds was wrong: repaired") ||
		!strings.Contains(log.String(), "kept_amount_msat=-5") {
		t.Fatalf("log lacks the repair at ERROR:\n%s", log.String())
	}
	s.Close()

	// The repair was committed: the next Open finds nothing.
	s, err = Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.TotalsRepaired(); n != 0 {
		t.Fatalf("repaired again: %d", n)
	}
}

// The pending total's trigger is coded only into UPDATEs that name preimage
// or failure_reason: every UPDATE that enters a final state must name one.
func TestFinalTransitionsNameTheTriggerColumns(t *testing.T) {
	p := randomPreimage(t)
	for from, tos := range transitions {
		for _, to := range tos {
			if !to.Final() || from == StateNone {
				continue
			}
			tr := step(NewID(), p, from, to, ReasonNone)
			var pre, hash []byte
			if tr.Preimage != nil {
				h := tr.Preimage.Hash()
				pre, hash = tr.Preimage[:], h[:]
			}
			for _, blank := range []bool{false, true} {
				q, _ := transitionUpdate(tr, 0, pre, hash, testStart, blank)
				set := q[:strings.Index(q, " WHERE ")]
				if !strings.Contains(set, "preimage =") && !strings.Contains(set, "failure_reason =") {
					t.Errorf("%s -> %s (blank %v): %s names neither preimage nor failure_reason",
						from, to, blank, set)
				}
			}
		}
	}
}
