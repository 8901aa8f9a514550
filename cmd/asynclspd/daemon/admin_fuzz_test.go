package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// FuzzAdminAPI sends the admin API requests of any method, path, headers
// and body, as net/http's server would parse them off the wire, with no
// token, an admin's, a wallet's, a revoked admin's or a malformed one
// (auth). The path's $VICTIM stands for the id of a wallet token to revoke,
// $RECEIVER for a receiver's key and $LSP for a receiver LSP's with held
// payments. Every answer must be JSON, every refusal the API's error body
// with the code of its status and never a 5xx, and a refused request must
// change nothing: tokens, holds, events and announcements are counted
// before and after. What succeeds must say what it did: a created token
// authenticates with its name and role, a revoked one no longer does, a
// reannouncement cleared as many announcements as it says. (net/http's
// ServeMux redirects a path that is not clean to its clean form before any
// route sees it: the one answer that is not JSON.) The seeds, in
// testdata/fuzz/FuzzAdminAPI, are TestAdminFuzzSeeds'.
func FuzzAdminAPI(f *testing.F) {
	z := newAdminFuzz(f)
	f.Fuzz(func(t *testing.T, method, target string, auth byte, header string, body []byte) {
		z.do(t, method, target, auth, header, body)
	})
}

// adminFuzz is the admin API with the tokens, receivers and holds the
// seeds refer to.
type adminFuzz struct {
	*adminEnv
	api    *adminAPI
	tokens []string          // by FuzzAdminAPI's auth, modulo its length
	ids    map[string]string // the path's placeholders
	ro     *sql.DB           // counts, through a connection of its own
}

func newAdminFuzz(t testing.TB) *adminFuzz {
	e := newAdminEnv(t)
	z := &adminFuzz{adminEnv: e, api: e.srv.Config.Handler.(*adminAPI)}
	ctx := context.Background()
	revoked, tok, err := e.store.CreateToken(ctx, "old-admin", holdstore.RoleAdmin)
	if err == nil {
		err = e.store.RevokeToken(ctx, tok.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, victim, err := e.store.CreateToken(ctx, "wallet-2", holdstore.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	z.tokens = []string{"", e.bearer, e.wallet, revoked, "0123456789abcdef.not-a-secret"}
	receiver, lsp := key(20), key(30)
	e.register(receiver)
	e.invoices(receiver, 3, time.Hour)
	e.held(receiver, key(21), holdstore.MailboxPending)
	e.hold(50_000, true)
	e.heldFor(lsp)
	z.ids = map[string]string{"$VICTIM": victim.ID, "$RECEIVER": receiver.String(),
		"$LSP": lsp.String()}
	if z.ro, err = sql.Open("sqlite", "file:"+e.path+"?mode=ro"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.ro.Close() })
	return z
}

// adminCounts is what a refused request must leave as it was.
type adminCounts struct {
	tokens, revoked, unannounced int
	lastSeq                      int64
	byState                      string
}

func (z *adminFuzz) counts(t testing.TB) adminCounts {
	t.Helper()
	var c adminCounts
	err := z.ro.QueryRow(`SELECT COUNT(*), COUNT(revoked_at) FROM api_tokens`).
		Scan(&c.tokens, &c.revoked)
	if err == nil {
		err = z.ro.QueryRow(`SELECT COUNT(*) FROM holds
			WHERE state = 'HELD' AND announced_at IS NULL`).Scan(&c.unannounced)
	}
	if err == nil {
		err = z.ro.QueryRow(`SELECT COALESCE(MAX(seq), 0) FROM hold_events`).Scan(&c.lastSeq)
	}
	if err == nil {
		err = z.ro.QueryRow(`SELECT COALESCE(group_concat(state || '=' || n), '')
			FROM (SELECT state, COUNT(*) AS n FROM holds GROUP BY state ORDER BY state)`).
			Scan(&c.byState)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// adminStatus is the status of each error code.
var adminStatus = func() map[adminclient.Code]int {
	m := map[adminclient.Code]int{}
	for _, c := range adminCodes {
		m[c.code] = c.status
	}
	return m
}()

// do serves one request and checks what FuzzAdminAPI promises of it. It
// returns the status, 0 for a request net/http answers without the API.
func (z *adminFuzz) do(t testing.TB, method, target string, auth byte, header string, body []byte) int {
	t.Helper()
	for name, id := range z.ids {
		target = strings.ReplaceAll(target, name, id)
	}
	req, ok := testkit.FuzzRequest(method, target, z.tokens[int(auth)%len(z.tokens)], header, body)
	if !ok {
		return 0
	}
	_, pattern := z.api.mux.Handler(req)
	before := z.counts(t)
	rec, left := testkit.ServeFuzz(t, z.api, req, testkit.FuzzPatience)
	if left {
		t.Fatalf("%s %s: no answer in %v", method, target, testkit.FuzzPatience)
	}
	after := z.counts(t)
	status := rec.Code
	success := status >= 200 && status < 300
	switch {
	case testkit.MuxRedirect(rec, req):
	case success:
		if rec.Header().Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d, not JSON: %q", method, target, status, rec.Body)
		}
	default:
		code, msg := testkit.ErrorBody(t, rec)
		if adminStatus[adminclient.Code(code)] != status {
			t.Fatalf("%s %s: %d with code %s (%s)", method, target, status, code, msg)
		}
		if status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" ||
			status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s: %d without its header", method, target, status)
		}
	}

	want := before
	if success {
		switch pattern {
		case "POST /v1/admin/tokens":
			var created adminclient.CreatedToken
			if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
				t.Fatal(err)
			}
			tok, err := z.store.AuthenticateToken(context.Background(), created.Bearer)
			if err != nil || tok.ID != created.Token.ID || tok.Name != created.Token.Name ||
				string(tok.Role) != created.Token.Role {
				t.Fatalf("created %s; it authenticates as %+v, %v", rec.Body, tok, err)
			}
			want.tokens++
		case "POST /v1/admin/tokens/{id}/revoke":
			var revoked adminclient.Token
			if err := json.Unmarshal(rec.Body.Bytes(), &revoked); err != nil || !revoked.Revoked {
				t.Fatalf("revoked %s: %v", rec.Body, err)
			}
			want.revoked = after.revoked // once more, or again
			if after.revoked != before.revoked && after.revoked != before.revoked+1 {
				t.Fatalf("revoked one: %d -> %d revoked", before.revoked, after.revoked)
			}
		case "POST /v1/admin/sender/reannounce":
			var n adminclient.Reannounced
			if err := json.Unmarshal(rec.Body.Bytes(), &n); err != nil {
				t.Fatal(err)
			}
			want.unannounced += n.Reannounced
		}
	}
	if after != want {
		t.Fatalf("%s %s answered %d %s: counts %+v, want %+v", method, target,
			status, rec.Body, after, want)
	}
	return status
}

// The seeds of FuzzAdminAPI are current (-update rewrites them), and each
// gets its status when they are sent in this order to a new adminFuzz:
// they are valid requests of every route and broken ones.
func TestAdminFuzzSeeds(t *testing.T) {
	const (
		none byte = iota
		admin
		wallet
		revoked
		malformed
	)
	type seed struct {
		name         string
		want         int
		method, path string
		auth         byte
		header, body string
	}
	seeds := []seed{
		{"info", 200, "GET", "/v1/admin/info", admin, "", ""},
		{"info-param", 400, "GET", "/v1/admin/info?verbose=1", admin, "", ""},
		{"info-no-token", 401, "GET", "/v1/admin/info", none, "", ""},
		{"info-revoked", 401, "GET", "/v1/admin/info", revoked, "", ""},
		{"info-malformed-token", 401, "GET", "/v1/admin/info", malformed, "", ""},
		{"info-wallet", 403, "GET", "/v1/admin/info", wallet, "", ""},
		{"create-token", 201, "POST", "/v1/admin/tokens", admin, "Content-Type: application/json",
			`{"name":"wallet-9","role":"wallet"}`},
		{"create-admin-token", 201, "POST", "/v1/admin/tokens", admin, "", `{"name":"ops.2","role":"admin"}`},
		{"create-bad-role", 400, "POST", "/v1/admin/tokens", admin, "", `{"name":"x","role":"root"}`},
		{"create-bad-name", 400, "POST", "/v1/admin/tokens", admin, "", `{"name":"a b","role":"wallet"}`},
		{"create-long-name", 400, "POST", "/v1/admin/tokens", admin, "",
			`{"name":"` + strings.Repeat("n", 65) + `","role":"wallet"}`},
		{"create-unknown-field", 400, "POST", "/v1/admin/tokens", admin, "", `{"name":"x","role":"wallet","ttl":1}`},
		{"create-empty", 400, "POST", "/v1/admin/tokens", admin, "", ``},
		{"create-trailing", 400, "POST", "/v1/admin/tokens", admin, "", `{"name":"x","role":"wallet"} {}`},
		{"create-oversized", 413, "POST", "/v1/admin/tokens", admin, "",
			`{"name":"` + strings.Repeat("n", adminBodyLimit) + `","role":"wallet"}`},
		{"create-wallet", 403, "POST", "/v1/admin/tokens", wallet, "", `{"name":"x","role":"admin"}`},
		{"tokens", 200, "GET", "/v1/admin/tokens", admin, "", ""},
		{"tokens-param", 400, "GET", "/v1/admin/tokens?limit=1", admin, "", ""},
		{"revoke", 200, "POST", "/v1/admin/tokens/$VICTIM/revoke", admin, "", ""},
		{"revoke-again", 200, "POST", "/v1/admin/tokens/$VICTIM/revoke", admin, "", ""},
		{"revoke-unknown", 404, "POST", "/v1/admin/tokens/0000000000000000/revoke", admin, "", ""},
		{"revoke-get", 405, "GET", "/v1/admin/tokens/$VICTIM/revoke", admin, "", ""},
		{"receivers", 200, "GET", "/v1/admin/receivers?limit=10", admin, "", ""},
		{"receivers-bad-limit", 400, "GET", "/v1/admin/receivers?limit=1001", admin, "", ""},
		{"receivers-bad-cursor", 400, "GET", "/v1/admin/receivers?cursor=zz", admin, "", ""},
		{"receivers-twice", 400, "GET", "/v1/admin/receivers?limit=1&limit=2", admin, "", ""},
		{"mailbox", 200, "GET", "/v1/admin/mailbox?receiver=$RECEIVER&state=pending&state=released", admin, "", ""},
		{"mailbox-bad-state", 400, "GET", "/v1/admin/mailbox?state=lost", admin, "", ""},
		{"mailbox-bad-receiver", 400, "GET", "/v1/admin/mailbox?receiver=02zz", admin, "", ""},
		{"mailbox-bad-cursor", 400, "GET", "/v1/admin/mailbox?cursor=%ff", admin, "", ""},
		{"stats", 200, "GET", "/v1/admin/stats", admin, "", ""},
		{"reannounce", 200, "POST", "/v1/admin/sender/reannounce", admin, "", `{"receiver_lsp":"$LSP"}`},
		{"reannounce-again", 200, "POST", "/v1/admin/sender/reannounce", admin, "", `{"receiver_lsp":"$LSP"}`},
		{"reannounce-bad-key", 400, "POST", "/v1/admin/sender/reannounce", admin, "", `{"receiver_lsp":"02"}`},
		{"reannounce-no-body", 400, "POST", "/v1/admin/sender/reannounce", admin, "", ``},
		{"reannounce-param", 400, "POST", "/v1/admin/sender/reannounce?all=1", admin, "", `{"receiver_lsp":"$LSP"}`},
		{"method-not-allowed", 405, "DELETE", "/v1/admin/tokens", admin, "", ""},
		{"unknown-path", 404, "GET", "/v1/admin/holds", admin, "", ""},
		{"unclean-path", 307, "GET", "/v1/admin/../admin/stats", admin, "", ""},
	}
	z := newAdminFuzz(t)
	var corpus []fuzzcorpus.Seed
	for _, s := range seeds {
		// $LSP in a body is the seed's: the fuzz target replaces only the
		// path's placeholders.
		body := strings.ReplaceAll(s.body, "$LSP", z.ids["$LSP"])
		corpus = append(corpus, fuzzcorpus.Seed{Name: s.name,
			Args: []any{s.method, s.path, s.auth, s.header, []byte(body)}})
		if got := z.do(t, s.method, s.path, s.auth, s.header, []byte(body)); got != s.want {
			t.Errorf("seed %s: status %d, want %d", s.name, got, s.want)
		}
	}
	fuzzcorpus.Check(t, "FuzzAdminAPI", corpus, *update)
}
