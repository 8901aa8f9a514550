package receiverlsp

import (
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

var testStart = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Key indexes of the test cast (testkit.Key).
const (
	lspIndex      = 1
	senderIndex   = 10  // sender LSPs: 10, 11, ...
	receiverIndex = 100 // receivers: 100, 101, ...
)

// env is one receiver LSP on a real SQLite file, with a test clock, a
// recording outbox for the bus, and its API on a local HTTP server.
type env struct {
	t      testing.TB
	ctx    context.Context
	clock  *clock.TestClock
	dbPath string
	store  *holdstore.Store
	role   *Role
	out    *testkit.Outbox
	height *testkit.Height
	lsp    onionmsg.NodeKey
	signer *onionmsg.PrivKeySigner
	api    *httptest.Server
	cfg    Config

	// stopRun stops the role's Run, if it runs.
	stopRun func()
}

func newEnv(t testing.TB, tweak ...func(*Config)) *env {
	t.Helper()
	clk := clock.NewTestClock(testStart)
	path := filepath.Join(t.TempDir(), "asynclsp.db")
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: path, Clock: clk, Logger: testkit.Quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	priv, lsp := testkit.Key(lspIndex)
	e := &env{
		t: t, ctx: context.Background(), clock: clk, dbPath: path,
		store: store, out: &testkit.Outbox{}, height: &testkit.Height{},
		lsp: lsp, signer: onionmsg.NewPrivKeySigner(priv),
	}
	e.height.Set(1000)
	cfg := Config{
		NodeKey: lsp, Network: &chaincfg.RegressionNetParams, Store: store,
		Messenger: e.out, Signer: e.signer, Height: e.height,
		Options: DefaultOptions(), Clock: clk, Logger: testkit.Quiet(),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	e.cfg = cfg
	if e.role, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	e.api = httptest.NewServer(e.role.Handler())
	t.Cleanup(func() { e.api.Close() })
	return e
}

// run runs the role's background work until the test ends, or restart.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.role.Run(ctx) }()
	var once sync.Once
	e.stopRun = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("run: %v", err)
			}
		})
	}
	e.t.Cleanup(e.stopRun)
}

// restart stops the role as a process exit would (Run, the API, the store
// closed), then opens the same file again and makes a new role on it, with
// the same config. Run is not started again.
func (e *env) restart() {
	e.t.Helper()
	if e.stopRun != nil {
		e.stopRun()
		e.stopRun = nil
	}
	e.api.Close()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: e.dbPath, Clock: e.clock, Logger: testkit.Quiet(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { store.Close() })
	e.store, e.cfg.Store = store, store
	e.cfg.LSPS = nil
	if e.role, err = New(e.cfg); err != nil {
		e.t.Fatal(err)
	}
	e.api = httptest.NewServer(e.role.Handler())
}

// settle waits until Run has made a whole pass that began after the call:
// whatever was committed before is then acted on, or deliberately not.
func (e *env) settle() {
	e.t.Helper()
	p := e.role.passes.Load()
	testkit.Eventually(e.t, 5*time.Second, "a worker pass", func() bool {
		e.role.kick()
		return e.role.passes.Load() >= p+2
	})
}

// advance moves the test clock forward.
func (e *env) advance(d time.Duration) { e.clock.SetTime(e.clock.Now().Add(d)) }

// receiver is a wallet: its node key and its client of the API.
type receiver struct {
	priv   *btcec.PrivateKey
	key    onionmsg.NodeKey
	signer *onionmsg.PrivKeySigner
	client *client.Client
}

func (e *env) receiver(i int) *receiver {
	e.t.Helper()
	priv, key := testkit.Key(receiverIndex + i)
	rc := &receiver{priv: priv, key: key, signer: onionmsg.NewPrivKeySigner(priv)}
	var err error
	rc.client, err = client.New(client.Config{
		BaseURL: e.api.URL, NodeKey: key, Signer: rc.signer, LSPKey: e.lsp,
		Clock: e.clock,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return rc
}

// registered returns receiver i, registered with the webhook.
func (e *env) registered(i int, webhook string) *receiver {
	e.t.Helper()
	rc := e.receiver(i)
	if _, err := rc.client.Register(e.ctx, webhook); err != nil {
		e.t.Fatal(err)
	}
	return rc
}

// invoice makes an invoice of rc as a wallet would for this LSP: created
// now, valid two days, a route hint through the LSP; o overrides.
func (e *env) invoice(rc *receiver, o testkit.InvoiceOpts) string {
	if o.Created.IsZero() {
		o.Created = e.clock.Now()
	}
	if o.Expiry == 0 {
		o.Expiry = 48 * time.Hour
	}
	if o.Hint.IsZero() {
		o.Hint = e.lsp
	}
	s, _ := testkit.Invoice(e.t, rc.priv, o)
	return s
}

// stock uploads n invoices of rc of the amount (0: amountless).
func (e *env) stock(rc *receiver, n int, amount lnwire.MilliSatoshi) {
	e.t.Helper()
	invs := make([]string, n)
	for i := range invs {
		invs[i] = e.invoice(rc, testkit.InvoiceOpts{Amount: amount})
	}
	resp, err := rc.client.Upload(e.ctx, invs)
	if err != nil || resp.Accepted != n {
		e.t.Fatalf("stock: %+v, %v", resp, err)
	}
}

func senderKey(i int) onionmsg.NodeKey {
	_, k := testkit.Key(senderIndex + i)
	return k
}

func request(rc *receiver, hold onionmsg.HoldID, amount lnwire.MilliSatoshi, minExpiry time.Time) *onionmsg.InvoiceRequest {
	return &onionmsg.InvoiceRequest{HoldID: hold, ReceiverKey: rc.key,
		Amount: amount, MinExpiry: minExpiry}
}

// reserve has sender LSP s ask for an invoice of rc for a new hold.
func (e *env) reserve(s int, rc *receiver, amount lnwire.MilliSatoshi) (*onionmsg.InvoiceRequest, *onionmsg.InvoiceReply) {
	e.t.Helper()
	req := request(rc, onionmsg.NewHoldID(), amount, e.clock.Now().Add(time.Hour))
	reply, err := e.role.answerInvoiceRequest(e.ctx, senderKey(s), req)
	if err != nil || reply.Invoice == "" {
		e.t.Fatalf("reserve: %+v, %v", reply, err)
	}
	return req, reply
}

// held is the held_htlc_available sender LSP s sends for a reservation.
func (e *env) held(s int, req *onionmsg.InvoiceRequest, reply *onionmsg.InvoiceReply) *onionmsg.HeldHTLCAvailable {
	e.t.Helper()
	inv, err := e.store.InvoiceByHash(e.ctx, hashOf(e.t, reply.Invoice))
	if err != nil {
		e.t.Fatal(err)
	}
	return &onionmsg.HeldHTLCAvailable{
		HoldID: req.HoldID, PaymentHash: inv.PaymentHash, Amount: req.Amount,
		DeadlineHeight: 1100, DeadlineTime: e.clock.Now().Add(6 * time.Hour),
		SenderLSPKey: senderKey(s), ReceiverKey: req.ReceiverKey,
		ReleaseSecret: onionmsg.NewReleaseSecret(),
	}
}

// hold puts a new held payment from sender LSP s into rc's mailbox.
func (e *env) hold(s int, rc *receiver) *onionmsg.HeldHTLCAvailable {
	e.t.Helper()
	req, reply := e.reserve(s, rc, 50_000)
	m := e.held(s, req, reply)
	if err := e.role.acceptHeld(e.ctx, senderKey(s), m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

// snapshot dumps every receiver table, read from the file through a
// separate connection, so a test can assert that nothing changed.
func (e *env) snapshot() string {
	e.t.Helper()
	db := e.readOnly(e.t)
	defer db.Close()
	return dumpTables(e.t, db)
}

// readOnly opens the database file read-only: a connection of its own.
func (e *env) readOnly(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// dumpTables is every receiver table as db reads it, row by row.
func dumpTables(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"receivers", "receiver_challenges",
		"receiver_invoices", "receiver_mailbox", "receiver_tombstones",
		"receiver_webhooks", "receiver_notified"} {

		// The WITHOUT ROWID tables by their keys.
		order := map[string]string{
			"receiver_tombstones": "sender_lsp, hold_id",
			"receiver_webhooks":   "receiver_key, app_name",
			"receiver_notified":   "receiver_key, method",
		}[table]
		if order == "" {
			order = "rowid"
		}
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY " + order)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "%s %v\n", table, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%v\n", vals)
		}
		rows.Close()
	}
	return b.String()
}

// unchanged runs f and fails the test if any receiver table changed.
func (e *env) unchanged(what string, f func()) {
	e.t.Helper()
	before := e.snapshot()
	f()
	if after := e.snapshot(); after != before {
		e.t.Fatalf("%s changed the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

func hashOf(t testing.TB, invoice string) lntypes.Hash {
	t.Helper()
	inv, err := zpay32.Decode(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return *inv.PaymentHash
}

// wantCode fails unless err is an API error with the code.
func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if !client.IsCode(err, code) {
		t.Fatalf("%s: err = %v, want code %s", what, err, code)
	}
}

// pending counts rc's pending mailbox items.
func (e *env) pending(rc *receiver) (int, error) {
	items, err := e.store.PendingItems(e.ctx, vertex(rc.key), e.clock.Now(), 1000)
	return len(items), err
}
