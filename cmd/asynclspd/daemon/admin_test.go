package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/routing/route"
)

// Only an admin token passes; every refusal is the API's JSON error.
func TestAdminAuth(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	revoked, tok, err := e.store.CreateToken(ctx, "old-admin", holdstore.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"no token", "", 401, "unauthorized"},
		{"garbage", "nope", 401, "unauthorized"},
		{"wrong secret", e.bearer[:17] + strings.Repeat("A", 43), 401, "unauthorized"},
		{"revoked admin", revoked, 401, "unauthorized"},
		{"wallet", e.wallet, 403, "forbidden"},
		{"admin", e.bearer, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, hdr, body := e.raw("GET", "/v1/admin/stats", tc.token, "")
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			if tc.code != "" && !strings.Contains(body, `"code":"`+tc.code+`"`) {
				t.Fatalf("body %s, want code %s", body, tc.code)
			}
			if (status == 401) != (hdr.Get("WWW-Authenticate") != "") {
				t.Fatalf("status %d with WWW-Authenticate %q", status, hdr.Get("WWW-Authenticate"))
			}
		})
	}

	status, hdr, body := e.raw("DELETE", "/v1/admin/tokens", e.bearer, "")
	if status != 405 || hdr.Get("Allow") != "POST, GET" || !strings.Contains(body, `"method_not_allowed"`) {
		t.Fatalf("DELETE /v1/admin/tokens: %d, Allow %q, %s", status, hdr.Get("Allow"), body)
	}
	status, _, body = e.raw("GET", "/v1/admin/nothing", e.bearer, "")
	if status != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("GET /v1/admin/nothing: %d %s", status, body)
	}
	status, _, body = e.raw("GET", "/v1/admin/stats?verbose=1", e.bearer, "")
	if status != 400 || !strings.Contains(body, `unknown query parameter \"verbose\"`) {
		t.Fatalf("unknown parameter: %d %s", status, body)
	}
}

func TestAdminInfo(t *testing.T) {
	e := newAdminEnv(t)
	info, err := e.admin.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NodeKey != key(10).String() || info.Version != Version ||
		info.NATS != "embedded" || !slices.Equal(info.Roles, []string{"receiver", "sender"}) {
		t.Fatalf("info %+v", info)
	}
}

// Tokens are created (the bearer works at once), listed without secrets,
// and revoked (the bearer stops working at once).
func TestAdminTokens(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	created, err := e.admin.CreateToken(ctx, "shop.backend-2", adminclient.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Bearer, created.Token.ID+".") || created.Token.Revoked {
		t.Fatalf("created %+v", created)
	}
	got, err := e.store.AuthenticateToken(ctx, created.Bearer)
	if err != nil || got.Name != "shop.backend-2" || got.Role != holdstore.RoleWallet {
		t.Fatalf("the new bearer authenticates as %+v, %v", got, err)
	}

	toks, err := e.admin.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tok := range toks {
		names = append(names, tok.Name+"/"+tok.Role)
	}
	// All three were made at the same time of the test clock: the order
	// among them is the ids'.
	slices.Sort(names)
	if want := []string{"operator/admin", "shop.backend-2/wallet", "wallet-1/wallet"}; !slices.Equal(names, want) {
		t.Fatalf("tokens %v, want %v", names, want)
	}
	_, _, body := e.raw("GET", "/v1/admin/tokens", e.bearer, "")
	secret := created.Bearer[len(created.Token.ID)+1:]
	if strings.Contains(body, secret) {
		t.Fatal("the token list shows a secret")
	}

	revoked, err := e.admin.RevokeToken(ctx, created.Token.ID)
	if err != nil || !revoked.Revoked || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %+v, %v", revoked, err)
	}
	if _, err := e.store.AuthenticateToken(ctx, created.Bearer); !errors.Is(err, holdstore.ErrTokenRevoked) {
		t.Fatalf("revoked bearer: %v", err)
	}
	if again, err := e.admin.RevokeToken(ctx, created.Token.ID); err != nil || !again.Revoked {
		t.Fatalf("revoke again: %+v, %v", again, err)
	}
	_, err = e.admin.RevokeToken(ctx, "0123456789abcdef")
	wantCode(t, err, adminclient.CodeNotFound)

	_, err = e.admin.CreateToken(ctx, "x", "root")
	wantCode(t, err, adminclient.CodeInvalidRequest)
	_, err = e.admin.CreateToken(ctx, "-bad name", adminclient.RoleWallet)
	wantCode(t, err, adminclient.CodeInvalidRequest)

	for _, tc := range []struct {
		body   string
		status int
	}{
		{``, 400},
		{`{"name":"a","role":"wallet","admin":true}`, 400},
		{`{"name":"a","role":"wallet"} {}`, 400},
		{`{"name":"` + strings.Repeat("a", 5000) + `","role":"wallet"}`, 413},
		{`[1]`, 400},
	} {
		status, _, body := e.raw("POST", "/v1/admin/tokens", e.bearer, tc.body)
		if status != tc.status || !strings.Contains(body, `"error":{"code":`) {
			t.Errorf("POST %.40q: %d %s, want %d", tc.body, status, body, tc.status)
		}
	}
}

// Receivers are listed by node key with their own counts, a page at a time.
func TestAdminReceivers(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	keys := []route.Vertex{key(1), key(2), key(3)}
	for _, k := range keys {
		e.register(k)
	}
	e.invoices(keys[0], 5, 48*time.Hour)
	e.invoices(keys[1], 1, 48*time.Hour)
	sender := key(30)
	e.held(keys[0], sender, holdstore.MailboxPending)
	e.held(keys[0], sender, holdstore.MailboxSettled)
	// Added after the reservations, which take the shortest-lived first.
	e.invoices(keys[0], 2, time.Hour) // expired below
	e.clock.SetTime(adminStart.Add(2 * time.Hour))

	want := map[route.Vertex]adminclient.Receiver{
		keys[0]: {Invoices: adminclient.InvoiceCounts{Available: 3, Expired: 2, Reserved: 2}, PendingItems: 1},
		keys[1]: {Invoices: adminclient.InvoiceCounts{Available: 1}},
		keys[2]: {},
	}
	var all []adminclient.Receiver
	opts := adminclient.PageOptions{Limit: 2}
	for pages := 0; ; pages++ {
		page, err := e.admin.Receivers(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if pages == 0 && (len(page.Receivers) != 2 || page.NextCursor == "") {
			t.Fatalf("first page: %d receivers, cursor %q", len(page.Receivers), page.NextCursor)
		}
		all = append(all, page.Receivers...)
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	if len(all) != 3 {
		t.Fatalf("%d receivers listed, want 3", len(all))
	}
	for i, r := range all {
		if i > 0 && r.NodeKey <= all[i-1].NodeKey {
			t.Fatalf("not in node key order: %s after %s", r.NodeKey, all[i-1].NodeKey)
		}
		var k route.Vertex
		b, _ := hex.DecodeString(r.NodeKey)
		copy(k[:], b)
		w := want[k]
		if r.Invoices != w.Invoices || r.PendingItems != w.PendingItems ||
			!strings.HasPrefix(r.WebhookURL, "https://wallet.example/") ||
			!r.RegisteredAt.Equal(adminStart) {
			t.Errorf("receiver %s: %+v, want counts %+v pending %d", r.NodeKey[:8], r, w.Invoices, w.PendingItems)
		}
	}
	_, err := e.admin.Receivers(ctx, adminclient.PageOptions{Cursor: "bm9wZQ"})
	wantCode(t, err, adminclient.CodeInvalidRequest)
	_, err = e.admin.Receivers(ctx, adminclient.PageOptions{Limit: 1001})
	wantCode(t, err, adminclient.CodeInvalidRequest)
}

// The mailbox is listed newest first, filtered by receiver and state, a
// page at a time, and never shows a release secret.
func TestAdminMailbox(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	r1, r2, sender := key(1), key(2), key(30)
	e.register(r1)
	e.register(r2)
	e.invoices(r1, 10, 48*time.Hour)
	e.invoices(r2, 10, 48*time.Hour)
	var items []*holdstore.MailboxItem // oldest first
	for i, st := range []holdstore.MailboxState{holdstore.MailboxPending,
		holdstore.MailboxSettled, holdstore.MailboxPending, holdstore.MailboxCanceled,
		holdstore.MailboxExpired} {
		r := r1
		if i%2 == 1 {
			r = r2
		}
		e.clock.SetTime(adminStart.Add(time.Duration(i) * time.Minute))
		items = append(items, e.held(r, sender, st))
	}
	ids := func(page *adminclient.MailboxPage) []string {
		var out []string
		for _, it := range page.Items {
			out = append(out, it.HoldID)
		}
		return out
	}
	want := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, items[i].HoldID.String())
		}
		return out
	}
	for _, tc := range []struct {
		name string
		opts adminclient.MailboxOptions
		want []string
	}{
		{"all", adminclient.MailboxOptions{}, want(4, 3, 2, 1, 0)},
		{"receiver", adminclient.MailboxOptions{Receiver: r1.String()}, want(4, 2, 0)},
		{"state", adminclient.MailboxOptions{States: []string{"pending"}}, want(2, 0)},
		{"states", adminclient.MailboxOptions{States: []string{"settled", "canceled"}}, want(3, 1)},
		{"receiver and state", adminclient.MailboxOptions{Receiver: r2.String(),
			States: []string{"settled"}}, want(1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := e.admin.Mailbox(ctx, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(page); !slices.Equal(got, tc.want) || page.NextCursor != "" {
				t.Fatalf("items %v (cursor %q), want %v", got, page.NextCursor, tc.want)
			}
		})
	}

	var paged []string
	opts := adminclient.MailboxOptions{PageOptions: adminclient.PageOptions{Limit: 2}}
	for {
		page, err := e.admin.Mailbox(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, ids(page)...)
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor
	}
	if !slices.Equal(paged, want(4, 3, 2, 1, 0)) {
		t.Fatalf("paged %v", paged)
	}

	page, err := e.admin.Mailbox(ctx, adminclient.MailboxOptions{States: []string{"canceled"}})
	if err != nil {
		t.Fatal(err)
	}
	it := page.Items[0]
	if it.ReceiverKey != r2.String() || it.SenderLSP != sender.String() ||
		it.PaymentHash != items[3].PaymentHash.String() || it.AmountMsat != 50_000 ||
		it.Reason != "test" || it.Version != 1 || !it.CreatedAt.Equal(adminStart.Add(3*time.Minute)) {
		t.Fatalf("item %+v", it)
	}
	_, _, body := e.raw("GET", "/v1/admin/mailbox", e.bearer, "")
	for _, it := range items {
		if strings.Contains(body, hex.EncodeToString(it.ReleaseSecret[:])) {
			t.Fatal("the mailbox listing shows a release secret")
		}
	}

	for _, bad := range []adminclient.MailboxOptions{
		{States: []string{"PENDING"}},
		{Receiver: "02abc"},
		{PageOptions: adminclient.PageOptions{Cursor: "!!"}},
	} {
		_, err := e.admin.Mailbox(ctx, bad)
		wantCode(t, err, adminclient.CodeInvalidRequest)
	}
}

// Stats count everything, every state present.
func TestAdminStats(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	r1, sender := key(1), key(30)
	e.register(r1)
	e.register(key(2))
	e.invoices(r1, 4, 48*time.Hour)
	e.held(r1, sender, holdstore.MailboxPending)
	e.held(r1, sender, holdstore.MailboxSettled)
	e.invoices(r1, 1, time.Minute)
	e.hold(70_000, false)
	e.hold(30_000, false)
	e.hold(1_000, true)
	e.clock.SetTime(adminStart.Add(time.Hour))

	st, err := e.admin.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantHolds := map[string]int{"CREATED": 2, "HELD": 0, "RELEASED": 0,
		"FORWARDING": 0, "SETTLED": 0, "CANCELED": 1}
	wantMailbox := map[string]int{"pending": 1, "released": 0, "settled": 1,
		"canceled": 0, "expired": 0, "refused": 0}
	if fmt.Sprint(st.Holds.ByState) != fmt.Sprint(wantHolds) ||
		st.Holds.PendingAmountMsat != 100_000 ||
		fmt.Sprint(st.Mailbox) != fmt.Sprint(wantMailbox) ||
		st.Invoices != (adminclient.InvoiceCounts{Available: 2, Expired: 1, Reserved: 2}) ||
		st.Receivers != 2 || st.Tokens != (adminclient.TokenStats{Active: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

// A body is read strictly; decodeBody's refusals name what is wrong.
func TestAdminDecodeBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		want error
	}{
		{`{"name":"a","role":"wallet"}`, nil},
		{``, errInvalidRequest},
		{`{"name":1}`, errInvalidRequest},
		{`{"name":"a"}x`, errInvalidRequest},
		{`{"name":"` + strings.Repeat("a", adminBodyLimit) + `"}`, errTooLarge},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", bytes.NewBufferString(tc.body))
		var v adminclient.CreateTokenRequest
		if err := decodeBody(w, r, &v); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%.30q: %v, want %v", tc.body, err, tc.want)
		}
	}
}

// The sender role announces the HELD holds for one receiver LSP again: it
// forgets that LSP's acknowledgments, no other's, and nothing else. Bad
// input and refused tokens change nothing.
func TestAdminReannounce(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	carol, erin := key(40), key(41)
	want := []holdstore.ID{e.heldFor(carol), e.heldFor(carol)}
	e.heldFor(erin)
	e.created(10_000, carol) // not HELD: never announced
	sorted := func(ids []holdstore.ID) []string {
		var out []string
		for _, id := range ids {
			out = append(out, id.String())
		}
		slices.Sort(out)
		return out
	}
	unchanged := func(what string) {
		t.Helper()
		if got := e.unannounced(); len(got) != 0 {
			t.Fatalf("%s: holds to announce again %v, want none", what, got)
		}
	}

	const path = "/v1/admin/sender/reannounce"
	good := `{"receiver_lsp":"` + carol.String() + `"}`
	for _, tc := range []struct {
		name, body string
	}{
		{"empty body", ``},
		{"no receiver_lsp", `{}`},
		{"empty key", `{"receiver_lsp":""}`},
		{"odd hex", `{"receiver_lsp":"` + carol.String()[:65] + `"}`},
		{"short", `{"receiver_lsp":"` + carol.String()[:64] + `"}`},
		{"not hex", `{"receiver_lsp":"` + strings.Repeat("zz", 33) + `"}`},
		{"not a compressed key", `{"receiver_lsp":"04` + carol.String()[2:] + `"}`},
		{"not on the curve", `{"receiver_lsp":"02` + strings.Repeat("ff", 32) + `"}`},
		{"a number", `{"receiver_lsp":2}`},
		{"unknown field", `{"receiver_lsp":"` + carol.String() + `","all":true}`},
	} {
		status, _, body := e.raw("POST", path, e.bearer, tc.body)
		if status != 400 || !strings.Contains(body, `"code":"invalid_request"`) {
			t.Errorf("%s: %d %s, want 400 invalid_request", tc.name, status, body)
		}
		unchanged(tc.name)
	}
	status, _, body := e.raw("POST", path+"?all=1", e.bearer, good)
	if status != 400 || !strings.Contains(body, `unknown query parameter \"all\"`) {
		t.Errorf("unknown parameter: %d %s", status, body)
	}
	for _, tc := range []struct {
		name, token string
		status      int
	}{{"no token", "", 401}, {"wallet", e.wallet, 403}} {
		if status, _, body := e.raw("POST", path, tc.token, good); status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
		}
		unchanged(tc.name)
	}
	status, hdr, body := e.raw("GET", path, e.bearer, "")
	if status != 405 || hdr.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q, %s", status, hdr.Get("Allow"), body)
	}

	got, err := e.admin.Reannounce(ctx, carol.String())
	if err != nil || got.Reannounced != 2 {
		t.Fatalf("reannounce: %+v, %v; want 2", got, err)
	}
	if ids := e.unannounced(); !slices.Equal(sorted(ids), sorted(want)) {
		t.Fatalf("to announce again %v, want carol's HELD holds %v", ids, want)
	}
	// Until carol acknowledges them again there is nothing more to forget.
	if got, err := e.admin.Reannounce(ctx, carol.String()); err != nil || got.Reannounced != 0 {
		t.Fatalf("reannounce again: %+v, %v; want 0", got, err)
	}
	_, _, body = e.raw("POST", path, e.bearer, `{"receiver_lsp":"`+erin.String()+`"}`)
	if body != `{"reannounced":1}`+"\n" {
		t.Fatalf("reannounce erin: %s", body)
	}
}

// Without the sender role the endpoint is not found, as the sender's
// wallet API is not.
func TestAdminReannounceWithoutSender(t *testing.T) {
	e := newAdminEnv(t)
	e.heldFor(key(40))
	srv := httptest.NewServer(newAdminAPI(e.store, nil,
		adminclient.Info{Roles: []string{RoleReceiver}}, e.clock, testkit.Quiet()))
	t.Cleanup(srv.Close)
	c, err := adminclient.New(adminclient.Config{URL: srv.URL, Token: e.bearer})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Reannounce(context.Background(), key(40).String())
	wantCode(t, err, adminclient.CodeNotFound)
	if !strings.Contains(err.Error(), "does not run the sender role") {
		t.Fatalf("error %v does not say why", err)
	}
	if got := e.unannounced(); len(got) != 0 {
		t.Fatalf("holds to announce again %v, want none", got)
	}
}
