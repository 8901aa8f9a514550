package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/senderlsp"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

var adminStart = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// adminEnv is the admin API over a real SQLite file, with an admin token
// and a wallet token.
type adminEnv struct {
	t      testing.TB
	clock  *clock.TestClock
	path   string // the store's file
	store  *holdstore.Store
	srv    *httptest.Server
	admin  *adminclient.Client
	bearer string // the admin token
	wallet string // a wallet token
}

func newAdminEnv(t testing.TB) *adminEnv {
	t.Helper()
	clk := clock.NewTestClock(adminStart)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "asynclsp.db")
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: path, Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	_, self := testkit.Key(10)
	// The sender role over the same store, never run: its admin action
	// only writes the store and asks a sweep of a loop that is not there.
	sender, err := senderlsp.New(senderlsp.DefaultConfig(), senderlsp.Deps{
		Store: store, Lnd: testkit.NewFakeLnd(clk, onionmsg.NodeKey(key(11))),
		Net: &outbox{self: self}, Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	api := newAdminAPI(store, sender, adminclient.Info{Version: Version,
		NodeKey: self.String(), Network: "regtest",
		Roles: []string{RoleReceiver, RoleSender}, NATS: "embedded"},
		clk, testkit.Quiet())
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &adminEnv{t: t, clock: clk, path: path, store: store, srv: srv}
	e.bearer, _, err = store.CreateToken(ctx, "operator", holdstore.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	e.wallet, _, err = store.CreateToken(ctx, "wallet-1", holdstore.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	e.admin = e.client(e.bearer)
	return e
}

func (e *adminEnv) client(token string) *adminclient.Client {
	c, err := adminclient.New(adminclient.Config{URL: e.srv.URL, Token: token})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// raw makes a request by hand and returns the status, the headers and the
// body.
func (e *adminEnv) raw(method, path, token, body string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (e *adminEnv) update(fn func(*holdstore.Tx) error) {
	e.t.Helper()
	if err := e.store.Update(context.Background(), fn); err != nil {
		e.t.Fatal(err)
	}
}

// register stores a receiver with a webhook.
func (e *adminEnv) register(key route.Vertex) {
	e.update(func(tx *holdstore.Tx) error {
		return tx.PutReceiver(key, [32]byte{1}, "https://wallet.example/"+key.String()[:8])
	})
}

// invoices stores n invoices of receiver that expire after life.
func (e *adminEnv) invoices(receiver route.Vertex, n int, life time.Duration) {
	e.update(func(tx *holdstore.Tx) error {
		for range n {
			var hash lntypes.Hash
			rand.Read(hash[:])
			if _, err := tx.AddInvoice(&holdstore.ReceiverInvoice{
				PaymentHash: hash, ReceiverKey: receiver,
				Invoice:   "lnbcrt-test-" + hash.String(),
				ExpiresAt: e.clock.Now().Add(life)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// held reserves an invoice of receiver for a hold of sender and puts it in
// the mailbox in state; it returns the item.
func (e *adminEnv) held(receiver, sender route.Vertex, state holdstore.MailboxState) *holdstore.MailboxItem {
	it := &holdstore.MailboxItem{SenderLSP: sender, HoldID: holdstore.NewID(),
		ReceiverKey: receiver, AmountMsat: 50_000, DeadlineHeight: 2000,
		DeadlineTime: e.clock.Now().Add(time.Hour), State: state}
	rand.Read(it.ReleaseSecret[:])
	if state == holdstore.MailboxCanceled || state == holdstore.MailboxRefused {
		it.Reason = "test"
	}
	e.update(func(tx *holdstore.Tx) error {
		inv, err := tx.ReserveFirst(receiver, 0, e.clock.Now(), sender, it.HoldID, it.AmountMsat)
		if err != nil {
			return err
		}
		it.PaymentHash = inv.PaymentHash
		return tx.AddMailboxItem(it)
	})
	return it
}

// hold stores a sender-role hold and moves it to CANCELED if canceled.
func (e *adminEnv) hold(amount lnwire.MilliSatoshi, canceled bool) {
	h := e.created(amount, key(21))
	if canceled {
		e.apply(holdstore.Transition{ID: h.ID,
			From: holdstore.StateCreated, To: holdstore.StateCanceled,
			Reason: holdstore.ReasonCanceledByOperator})
	}
}

// heldFor stores a HELD sender-role hold whose receiver LSP is lsp and has
// acknowledged its held_htlc_available.
func (e *adminEnv) heldFor(lsp route.Vertex) holdstore.ID {
	h := e.created(50_000, lsp)
	e.apply(holdstore.Transition{ID: h.ID, From: holdstore.StateCreated,
		To: holdstore.StateHeld, IncomingExpiry: 1200, DeadlineHeight: 1100})
	if err := e.store.MarkAnnounced(context.Background(), h.ID); err != nil {
		e.t.Fatal(err)
	}
	return h.ID
}

// unannounced lists the ids of the HELD holds no receiver LSP has
// acknowledged: what the sender role's next sweep announces.
func (e *adminEnv) unannounced() []holdstore.ID {
	e.t.Helper()
	page, err := e.store.Unannounced(context.Background(), "", 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []holdstore.ID
	for _, h := range page.Holds {
		ids = append(ids, h.ID)
	}
	return ids
}

// created stores a sender-role hold for receiver LSP lsp, in CREATED.
func (e *adminEnv) created(amount lnwire.MilliSatoshi, lsp route.Vertex) *holdstore.Hold {
	e.t.Helper()
	var p lntypes.Preimage
	rand.Read(p[:])
	h := &holdstore.Hold{ID: holdstore.NewID(), PaymentHash: p.Hash(),
		Owner: "wallet-1", AmountMsat: amount, FeeMsat: 1000,
		ReceiverKey: key(20), ReceiverLSP: lsp,
		ReceiverInvoice: "lnbcrt-receiver", ReceiverInvoiceExpiry: e.clock.Now().Add(24 * time.Hour),
		HoldInvoice: "lnbcrt-hold", CltvDelta: 1008, RetryPolicy: holdstore.RetryPatient,
		DeadlineTime: e.clock.Now().Add(12 * time.Hour)}
	if _, err := e.store.Create(context.Background(), h); err != nil {
		e.t.Fatal(err)
	}
	return h
}

func (e *adminEnv) apply(tr holdstore.Transition) {
	e.t.Helper()
	if _, err := e.store.Apply(context.Background(), tr); err != nil {
		e.t.Fatal(err)
	}
}

// outbox is the messenger of the admin tests' sender role: it records what
// it is given and has no peer to ask.
type outbox struct {
	testkit.Outbox
	self onionmsg.NodeKey
}

func (o *outbox) Self() onionmsg.NodeKey { return o.self }

func (o *outbox) Request(context.Context, onionmsg.NodeKey, onionmsg.Message) (onionmsg.Message, error) {
	return nil, errors.New("outbox: no peers in the admin tests")
}

func key(i int) route.Vertex {
	_, k := testkit.Key(i)
	return route.Vertex(k)
}

// wantCode checks an error from the client is the API's code.
func wantCode(t *testing.T, err error, code adminclient.Code) {
	t.Helper()
	if !errors.Is(err, code) {
		t.Fatalf("error %v, want code %s", err, code)
	}
}
