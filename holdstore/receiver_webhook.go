package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/routing/route"
)

// A receiver's LSPS5 webhooks (migration 0006): one per app_name,
// insert-or-replace up to a limit, each remembering whether the
// lsps5.webhook_registered notification is still owed to it; and when a
// notification of each method last went to the receiver, for the cooldown.
// Validation (lengths, URL, which errors a peer sees) is receiverlsp's.

// DefaultAppName is the app_name of the webhook the HTTP registration sets
// (and of the single webhook_url of a receiver registered before 0006).
const DefaultAppName = "default"

var (
	// ErrTooManyWebhooks: the receiver has the most webhooks allowed, and
	// the app_name is not one of them.
	ErrTooManyWebhooks = errors.New("too many webhooks")

	// ErrNoWebhook: the receiver has no webhook under that app_name.
	ErrNoWebhook = errors.New("no webhook under that app_name")
)

// Webhook is one of a receiver's webhooks.
type Webhook struct {
	Receiver route.Vertex
	AppName  string
	URL      string

	// Version grows whenever URL changes.
	Version uint64

	// RegisteredOwed: lsps5.webhook_registered is still owed to it.
	RegisteredOwed bool

	CreatedAt, UpdatedAt, LastUsed time.Time
}

const webhookColumns = `receiver_key, app_name, url, version, registered_owed,
	created_at, updated_at, last_used`

func scanWebhooks(rows *sql.Rows) ([]*Webhook, error) {
	defer rows.Close()
	var out []*Webhook
	for rows.Next() {
		var (
			w                      Webhook
			key                    []byte
			owed                   int
			created, updated, used int64
		)
		err := rows.Scan(&key, &w.AppName, &w.URL, &w.Version, &owed,
			&created, &updated, &used)
		if err != nil {
			return nil, err
		}
		copy(w.Receiver[:], key)
		w.RegisteredOwed = owed != 0
		w.CreatedAt, w.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
		w.LastUsed = time.Unix(0, used)
		out = append(out, &w)
	}
	return out, rows.Err()
}

// WebhookSet is what SetWebhook did.
type WebhookSet struct {
	// Webhooks is how many the receiver has now, this one included.
	Webhooks int

	// NoChange: the receiver had this very URL under this app_name.
	// Otherwise webhook_registered is now owed to it.
	NoChange bool
}

// SetWebhook sets the receiver's webhook under app: replaced if there is
// one, else added if the receiver has fewer than max (max < 1: no limit),
// else ErrTooManyWebhooks. A new or changed webhook owes
// lsps5.webhook_registered; an unchanged one is left as it is (55:178-186,
// 220-237). The receiver must exist (EnsureReceiver).
func (t *Tx) SetWebhook(receiver route.Vertex, app, url string, max int) (WebhookSet, error) {
	var set WebhookSet
	n, err := t.countWebhooks(receiver)
	if err != nil {
		return set, err
	}
	var old string
	err = t.QueryRow(`SELECT url FROM receiver_webhooks
		WHERE receiver_key = ? AND app_name = ?`, receiver[:], app).Scan(&old)
	now := nanos(t.now)
	switch {
	case err == nil && old == url:
		return WebhookSet{Webhooks: n, NoChange: true}, nil
	case err == nil:
		_, err = t.Exec(`UPDATE receiver_webhooks SET url = ?,
			version = version + 1, registered_owed = 1, updated_at = ?,
			last_used = ? WHERE receiver_key = ? AND app_name = ?`,
			url, now, now, receiver[:], app)
		return WebhookSet{Webhooks: n}, err
	case !isNoRows(err):
		return set, err
	case max > 0 && n >= max:
		return WebhookSet{Webhooks: n}, fmt.Errorf("%w: %d of %d", ErrTooManyWebhooks, n, max)
	}
	_, err = t.Exec(`INSERT INTO receiver_webhooks (receiver_key, app_name, url,
		registered_owed, created_at, updated_at, last_used)
		VALUES (?, ?, ?, 1, ?, ?, ?)`, receiver[:], app, url, now, now, now)
	return WebhookSet{Webhooks: n + 1}, err
}

func (t *Tx) countWebhooks(receiver route.Vertex) (int, error) {
	var n int
	err := t.QueryRow(`SELECT COUNT(*) FROM receiver_webhooks
		WHERE receiver_key = ?`, receiver[:]).Scan(&n)
	return n, err
}

// HasWebhooks reports whether the receiver has any webhook.
func (t *Tx) HasWebhooks(receiver route.Vertex) (bool, error) {
	n, err := t.countWebhooks(receiver)
	return n > 0, err
}

// RemoveWebhook removes the receiver's webhook under app, or fails with
// ErrNoWebhook.
func (t *Tx) RemoveWebhook(receiver route.Vertex, app string) error {
	res, err := t.Exec(`DELETE FROM receiver_webhooks
		WHERE receiver_key = ? AND app_name = ?`, receiver[:], app)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return ErrNoWebhook
}

// MarkWebhookRegistered records that webhook_registered went to the
// receiver's webhook under app at that version (delivered or given up). A
// webhook whose URL changed since still owes it.
func (t *Tx) MarkWebhookRegistered(receiver route.Vertex, app string, version uint64) error {
	_, err := t.Exec(`UPDATE receiver_webhooks SET registered_owed = 0,
		last_used = ? WHERE receiver_key = ? AND app_name = ? AND version = ?`,
		nanos(t.now), receiver[:], app, version)
	return err
}

// Notified records that a notification of method went to the receiver's
// webhooks at now, the start of its cooldown, and that they were used.
func (t *Tx) Notified(receiver route.Vertex, method string) error {
	now := nanos(t.now)
	_, err := t.Exec(`INSERT INTO receiver_notified (receiver_key, method, sent_at)
		VALUES (?, ?, ?) ON CONFLICT (receiver_key, method)
		DO UPDATE SET sent_at = excluded.sent_at`, receiver[:], method, now)
	if err != nil {
		return err
	}
	_, err = t.Exec(`UPDATE receiver_webhooks SET last_used = ?
		WHERE receiver_key = ?`, now, receiver[:])
	return err
}

// ResetNotified forgets when notifications last went to the receiver: its
// cooldowns start afresh. It reports whether there were any.
func (t *Tx) ResetNotified(receiver route.Vertex) (bool, error) {
	res, err := t.Exec("DELETE FROM receiver_notified WHERE receiver_key = ?",
		receiver[:])
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Webhooks returns the receiver's webhooks, oldest first.
func (s *Store) Webhooks(ctx context.Context, receiver route.Vertex) ([]*Webhook, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+webhookColumns+`
		FROM receiver_webhooks WHERE receiver_key = ?
		ORDER BY created_at, app_name`, receiver[:])
	if err != nil {
		return nil, err
	}
	return scanWebhooks(rows)
}

// RegistrationsOwed returns the receivers that have a webhook still owed
// lsps5.webhook_registered.
func (s *Store) RegistrationsOwed(ctx context.Context) ([]route.Vertex, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT receiver_key
		FROM receiver_webhooks INDEXED BY receiver_webhooks_owed
		WHERE registered_owed = 1`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []route.Vertex
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			return nil, err
		}
		var v route.Vertex
		copy(v[:], key)
		out = append(out, v)
	}
	return out, rows.Err()
}

// LastNotified returns when a notification of method last went to the
// receiver, if it did since its cooldowns were last reset.
func (s *Store) LastNotified(ctx context.Context, receiver route.Vertex, method string) (time.Time, bool, error) {
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT sent_at FROM receiver_notified
		WHERE receiver_key = ? AND method = ?`, receiver[:], method).Scan(&at)
	if isNoRows(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return time.Unix(0, at), true, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// HasNotified reports whether the receiver has any cooldown running.
func (s *Store) HasNotified(ctx context.Context, receiver route.Vertex) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM receiver_notified
		WHERE receiver_key = ? LIMIT 1`, receiver[:]).Scan(&one)
	if isNoRows(err) {
		return false, nil
	}
	return err == nil, err
}
