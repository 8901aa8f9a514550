package holdstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func setWebhook(t *testing.T, s *Store, key [33]byte, app, url string, max int) (WebhookSet, error) {
	t.Helper()
	var set WebhookSet
	err := s.Update(context.Background(), func(tx *Tx) (err error) {
		set, err = tx.SetWebhook(key, app, url, max)
		return err
	})
	return set, err
}

// SetWebhook inserts or replaces by app_name up to the limit; only a new or
// changed webhook owes webhook_registered, and only at its version.
func TestSetWebhookInsertOrReplace(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)

	set, err := setWebhook(t, s, key, "a", "https://a.example/1", 2)
	if err != nil || set != (WebhookSet{Webhooks: 1}) {
		t.Fatalf("add a: %+v, %v", set, err)
	}
	set, err = setWebhook(t, s, key, "a", "https://a.example/1", 2)
	if err != nil || set != (WebhookSet{Webhooks: 1, NoChange: true}) {
		t.Fatalf("same again: %+v, %v", set, err)
	}
	set, err = setWebhook(t, s, key, "b", "https://b.example/", 2)
	if err != nil || set != (WebhookSet{Webhooks: 2}) {
		t.Fatalf("add b: %+v, %v", set, err)
	}
	_, err = setWebhook(t, s, key, "c", "https://c.example/", 2)
	if !errors.Is(err, ErrTooManyWebhooks) {
		t.Fatalf("a third of at most 2: %v", err)
	}
	// Replacing is not adding: allowed at the limit.
	hooks, _ := s.Webhooks(ctx, key)
	v := hooks[0].Version
	err = s.Update(ctx, func(tx *Tx) error { return tx.MarkWebhookRegistered(key, "a", v) })
	if err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	set, err = setWebhook(t, s, key, "a", "https://a.example/2", 2)
	if err != nil || set != (WebhookSet{Webhooks: 2}) {
		t.Fatalf("replace a: %+v, %v", set, err)
	}
	hooks, _ = s.Webhooks(ctx, key)
	if len(hooks) != 2 || hooks[0].AppName != "a" || hooks[0].URL != "https://a.example/2" ||
		!hooks[0].RegisteredOwed || hooks[0].Version != v+1 {
		t.Fatalf("after replacing: %+v", hooks[0])
	}
	// The end of a delivery to the old URL does not clear what the new
	// one is owed.
	err = s.Update(ctx, func(tx *Tx) error { return tx.MarkWebhookRegistered(key, "a", v) })
	if err != nil {
		t.Fatal(err)
	}
	if hooks, _ = s.Webhooks(ctx, key); !hooks[0].RegisteredOwed {
		t.Fatal("an old delivery cleared the new URL's webhook_registered")
	}
	owed, err := s.RegistrationsOwed(ctx)
	if err != nil || len(owed) != 1 || owed[0] != key {
		t.Fatalf("registrations owed: %v, %v", owed, err)
	}

	err = s.Update(ctx, func(tx *Tx) error { return tx.RemoveWebhook(key, "b") })
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *Tx) error { return tx.RemoveWebhook(key, "b") })
	if !errors.Is(err, ErrNoWebhook) {
		t.Fatalf("removing twice: %v", err)
	}
}

// A peer of LSPS0 becomes a receiver without a token; the HTTP registration
// later gives it one.
func TestEnsureReceiverWithoutToken(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := vertex(3)
	for i, want := range []bool{true, false} {
		var created bool
		err := s.Update(ctx, func(tx *Tx) (err error) {
			created, err = tx.EnsureReceiver(key)
			return err
		})
		if err != nil || created != want {
			t.Fatalf("ensure %d: %v, %v", i, created, err)
		}
	}
	r, err := s.Receiver(ctx, key)
	if err != nil || r.HasToken || r.TokenHash != [32]byte{} {
		t.Fatalf("receiver without a token: %+v, %v", r, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutReceiver(key, sha256.Sum256([]byte("t")), "")
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ = s.Receiver(ctx, key); !r.HasToken || r.TokenHash != sha256.Sum256([]byte("t")) {
		t.Fatalf("after registering: %+v", r)
	}
	// Ensuring again keeps the token.
	err = s.Update(ctx, func(tx *Tx) error { _, err := tx.EnsureReceiver(key); return err })
	if r, _ = s.Receiver(ctx, key); err != nil || !r.HasToken {
		t.Fatalf("ensure dropped the token: %+v, %v", r, err)
	}
}

// The cooldown is in the file, per receiver and method, until reset.
func TestNotifiedSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "asynclsp.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	key := registered(t, s, 1)
	err = s.Update(ctx, func(tx *Tx) error { return tx.Notified(key, "lsps5.payment_incoming") })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(ctx, Config{Path: path}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok, err := s.LastNotified(ctx, key, "lsps5.payment_incoming"); !ok || err != nil {
		t.Fatalf("cooldown lost on reopening: %v, %v", ok, err)
	}
	if _, ok, _ := s.LastNotified(ctx, key, "asynclsp.invoices_low"); ok {
		t.Fatal("a method never sent has a cooldown")
	}
	var had bool
	err = s.Update(ctx, func(tx *Tx) (err error) { had, err = tx.ResetNotified(key); return err })
	if err != nil || !had {
		t.Fatalf("reset: %v, %v", had, err)
	}
	if _, ok, _ := s.LastNotified(ctx, key, "lsps5.payment_incoming"); ok {
		t.Fatal("cooldown survived its reset")
	}
}

// Migration 0006 on a file of version 5: receivers keep their token, the
// single webhook_url becomes the app "default" (owing nothing), invoices
// keep their receiver, and every foreign key still holds.
func TestMigrationMovesWebhookURL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v5.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:5] {
		if err := apply(ctx, db, m); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
	}
	with, without := vertex(1), vertex(2)
	tok := sha256.Sum256([]byte("tok"))
	_, err = db.Exec(`INSERT INTO receivers (node_key, token_hash, webhook_url,
		invoices_low, registered_at, updated_at) VALUES
		(?, ?, 'https://old.example/hook', 1, 10, 20), (?, ?, '', 0, 30, 40)`,
		with[:], tok[:], without[:], tok[:])
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO receiver_invoices (payment_hash, receiver_key,
		invoice, amount_msat, expires_at, created_at) VALUES (?, ?, 'lnbcrt1', 0, 99, 1)`,
		make([]byte, 32), with[:])
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatalf("migrating a version 5 file: %v", err)
	}
	defer s.Close()
	r, err := s.Receiver(ctx, with)
	if err != nil || !r.HasToken || r.TokenHash != tok || r.InvoicesLow != LowOwed ||
		r.RegisteredAt != time.Unix(0, 10) {
		t.Fatalf("migrated receiver: %+v, %v", r, err)
	}
	hooks, err := s.Webhooks(ctx, with)
	if err != nil || len(hooks) != 1 || *hooks[0] != (Webhook{Receiver: with,
		AppName: DefaultAppName, URL: "https://old.example/hook", Version: 1,
		CreatedAt: time.Unix(0, 10), UpdatedAt: time.Unix(0, 20),
		LastUsed: time.Unix(0, 20)}) {
		t.Fatalf("migrated webhook: %+v, %v", hooks, err)
	}
	if hooks, _ := s.Webhooks(ctx, without); len(hooks) != 0 {
		t.Fatalf("a receiver without webhook_url got %+v", hooks)
	}
	var violations int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM pragma_foreign_key_check").Scan(&violations); err != nil || violations != 0 {
		t.Fatalf("foreign key violations after the migration: %d, %v", violations, err)
	}
	c, err := s.CountInvoices(ctx, with, time.Unix(0, 0))
	if err != nil || c.Available != 1 {
		t.Fatalf("invoices after the migration: %+v, %v", c, err)
	}
	low, err := s.InvoicesLowOwed(ctx)
	if err != nil || len(low) != 1 || low[0].NodeKey != with {
		t.Fatalf("invoices_low owed: %v, %v", low, err)
	}
	var version int
	s.db.QueryRow("PRAGMA user_version").Scan(&version)
	if version != SchemaVersion() {
		t.Fatal(fmt.Sprint("version ", version))
	}
}
