package holdstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// The state CHECKs cost no temporary b-tree (migration 0010), on the
// writer's own connection, and still refuse a state that is not one.
func TestStateChecksNeedNoTempTable(t *testing.T) {
	s, _ := openTest(t)
	seedHolds(t, s, 1, 1)
	mailboxItem(t, s, registered(t, s, 1), vertex(0xa), 0, MailboxPending)
	checkStateChecks(t, s)
}

// Migration 0010 rewrites the CHECKs of a version 9 file, keeps its rows, and
// the writer's connection, opened after it, plans with the new ones.
func TestMigration0010RewritesStateChecks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v9.db")
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	ids := seedHolds(t, s, 3, 1)
	alice, x := registered(t, s, 1), vertex(0xa)
	mailboxItem(t, s, alice, x, 0, MailboxPending)
	s.Close()

	// Back to the CHECKs of version 9, the way 0010 moved them on.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var v int64
	if err := tx.QueryRow("PRAGMA schema_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"PRAGMA writable_schema = ON",
		`UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (state = ''CREATED'' OR state = ''HELD'' OR state = ''RELEASED''
        OR state = ''FORWARDING'' OR state = ''SETTLED'' OR state = ''CANCELED'')', 'CHECK (state IN (''CREATED'', ''HELD'', ''RELEASED'', ''FORWARDING'', ''SETTLED'', ''CANCELED''))') WHERE name = 'holds'`,
		`UPDATE sqlite_schema SET sql = replace(sql, 'CHECK (state = ''pending'' OR state = ''released'' OR state = ''settled''
        OR state = ''canceled'' OR state = ''expired'' OR state = ''refused'')', 'CHECK (state IN (''pending'', ''released'', ''settled'', ''canceled'', ''expired'', ''refused''))') WHERE name = 'receiver_mailbox'`,
		"PRAGMA writable_schema = OFF",
		fmt.Sprintf("PRAGMA schema_version = %d", v+1),
		"PRAGMA user_version = 9",
	} {
		if _, err := tx.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema
		WHERE sql LIKE '%state IN (''CREATED''%' OR sql LIKE '%state IN (''pending''%'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("version 9 CHECKs: %d tables (%v), want 2", n, err)
	}
	db.Close()

	if s, err = Open(ctx, Config{Path: path}); err != nil {
		t.Fatalf("migrating a version 9 file: %v", err)
	}
	defer s.Close()
	checkStateChecks(t, s)
	for _, id := range ids {
		if _, err := s.Apply(ctx, held(id)); err != nil {
			t.Fatalf("a hold of version 9 after the migration: %v", err)
		}
	}
	checkMailboxCounts(t, s, []route.Vertex{alice}, []route.Vertex{x})
}

// checkStateChecks: the writer plans a hold's transition and a mailbox
// item's change of state without a temporary b-tree, and the CHECKs refuse
// a state that is not one (each table has a row).
func checkStateChecks(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	var id ID
	q, args := transitionUpdate(held(id), 1, nil, nil, time.Now(), true)
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{q, args},
		{`UPDATE receiver_mailbox SET state = ?, reason = ?
			WHERE sender_lsp = ? AND hold_id = ?`, []any{"released", "", []byte{}, []byte{}}},
	} {
		var ops []string
		err := s.Update(ctx, func(tx *Tx) error {
			rows, err := tx.Query("EXPLAIN "+stmt.sql, stmt.args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var (
					addr       int
					op         string
					p1, p2, p3 sql.NullInt64
					p4         sql.NullString
					p5         sql.NullInt64
					comment    sql.NullString
				)
				if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
					return err
				}
				ops = append(ops, op)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) == 0 || strings.Contains(strings.Join(ops, " "), "OpenEphemeral") {
			t.Fatalf("%s\nplans a temporary b-tree (or nothing): %v", stmt.sql, ops)
		}
	}
	for _, table := range []string{"holds", "receiver_mailbox"} {
		_, err := s.db.ExecContext(ctx, "UPDATE "+table+" SET state = 'HELD '")
		if err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
			t.Fatalf("%s: a state that is not one: %v", table, err)
		}
	}
}
