package senderlsp

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// FuzzAPI sends bob's HTTP API requests of any method, path, headers and
// body, as net/http's server would parse them off the wire, from a caller
// with no token, a wallet's, another wallet's, an admin's, a revoked one or
// a malformed one (auth). The path's $PAYMENT and $OTHER stand for the ids
// of a payment of the first wallet and one of the other. Every answer must
// be JSON (an event stream: its first message), every refusal the API's
// error body with a code of the status, never a 5xx but a create's
// temporary 503s, and a refused request must change nothing in the store.
// (net/http's ServeMux redirects a path that is not clean, //v1/x, to its
// clean form before any route sees it: the one answer that is not JSON.)
// The seeds, in testdata/fuzz/FuzzAPI, are TestAPIFuzzSeeds'.
func FuzzAPI(f *testing.F) {
	z := newAPIFuzz(f)
	f.Fuzz(func(t *testing.T, method, target string, auth byte, header string, body []byte) {
		z.do(t, method, target, auth, header, body)
	})
}

// apiFuzz is bob's API with the callers and payments FuzzAPI refers to.
type apiFuzz struct {
	*apiHarness
	tokens []string          // by FuzzAPI's auth, modulo its length
	ids    map[string]string // the path's placeholders
}

func newAPIFuzz(t testing.TB) *apiFuzz {
	a := newAPIHarness(t)
	z := &apiFuzz{apiHarness: a}
	ctx := context.Background()
	revoked, tok, err := a.store.CreateToken(ctx, "wallet-c", holdstore.RoleWallet)
	if err == nil {
		err = a.store.RevokeToken(ctx, tok.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	walletA := a.token("wallet-a", holdstore.RoleWallet)
	walletB := a.token("wallet-b", holdstore.RoleWallet)
	z.tokens = []string{"", walletA, walletB, a.token("operator", holdstore.RoleAdmin),
		revoked, "0123456789abcdef.not-a-secret"}
	z.ids = map[string]string{
		"$PAYMENT": a.createVia(a.client(walletA), 1000).ID,
		"$OTHER":   a.createVia(a.client(walletB), 2000).ID,
	}
	return z
}

// storeCounts is what a refused request must leave as it was.
type storeCounts struct {
	ByState         map[holdstore.State]int
	Holds           int
	LastSeq         uint64
	Tokens, Revoked int
}

func (z *apiFuzz) counts(t testing.TB) storeCounts {
	t.Helper()
	ctx := context.Background()
	var c storeCounts
	var err error
	if c.ByState, err = z.store.CountByState(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.ByState {
		c.Holds += n
	}
	if c.LastSeq, err = z.store.LastSeq(ctx); err != nil {
		t.Fatal(err)
	}
	toks, err := z.store.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		c.Tokens++
		if tok.Revoked() {
			c.Revoked++
		}
	}
	return c
}

// temporary are the codes of a 503 a well-formed create may get: the
// receiver LSP or our channels cannot take it now.
var temporary = map[string]bool{codeReceiverLSPUnreachable: true,
	codeInsufficientLiquidity: true, codeNoHTLCSlots: true}

// do serves one request and checks what FuzzAPI promises of it. It returns
// the status, 0 for a request net/http answers without the API.
func (z *apiFuzz) do(t testing.TB, method, target string, auth byte, header string, body []byte) int {
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
	create := pattern == "POST /v1/payments"
	switch {
	case testkit.MuxRedirect(rec, req):
	case rec.Header().Get("Content-Type") == "text/event-stream":
		if pattern != "GET /v1/events" || status != http.StatusOK ||
			!strings.HasPrefix(rec.Body.String(), "retry: 2000\nid: ") {
			t.Fatalf("%s %s: a stream of %d: %q", method, target, status, rec.Body)
		}
	case status >= 200 && status < 300:
		if rec.Header().Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d, not JSON: %q", method, target, status, rec.Body)
		}
	default:
		code, msg := testkit.ErrorBody(t, rec)
		if apiCodes[code] != status {
			t.Fatalf("%s %s: %d with code %s (%s)", method, target, status, code, msg)
		}
		if status >= 500 && !(create && temporary[code]) {
			t.Fatalf("%s %s: %d %s (%s)", method, target, status, code, msg)
		}
		if status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" ||
			status == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s: %d without its header", method, target, status)
		}
	}

	switch {
	case create && status == http.StatusCreated:
		var p paymentJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil ||
			p.State != holdstore.StateCreated || after.Holds != before.Holds+1 ||
			rec.Header().Get("Location") != "/v1/payments/"+p.ID {
			t.Fatalf("%s %s: created %+v (%v), holds %d -> %d", method, target,
				p, err, before.Holds, after.Holds)
		}
	case pattern == "POST /v1/payments/{id}/cancel" && status == http.StatusOK:
		var p paymentJSON
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil ||
			p.State != holdstore.StateCanceled || after.Holds != before.Holds {
			t.Fatalf("%s %s: canceled %+v (%v)", method, target, p, err)
		}
	case !reflect.DeepEqual(before, after):
		t.Fatalf("%s %s answered %d and changed the store:\n%+v\n%+v",
			method, target, status, before, after)
	}
	return status
}

// apiSeeds are FuzzAPI's seeds, each with the status it gets when they are
// sent in this order to a new apiFuzz.
func apiSeeds(dave, carol string) []struct {
	seed fuzzcorpus.Seed
	want int
} {
	const (
		none byte = iota
		walletA
		walletB
		admin
		revoked
		malformed
	)
	create := func(fields string) []byte {
		return []byte(`{"receiver_key":"` + dave + `","receiver_lsp":"` + carol + `"` + fields + `}`)
	}
	_, nobody := testkit.Key(9)
	_, stranger := testkit.Key(8)
	var out []struct {
		seed fuzzcorpus.Seed
		want int
	}
	add := func(name string, want int, method, target string, auth byte, header string, body []byte) {
		out = append(out, struct {
			seed fuzzcorpus.Seed
			want int
		}{fuzzcorpus.Seed{Name: name, Args: []any{method, target, auth, header, body}}, want})
	}
	add("create", 201, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":1000`))
	add("create-every-field", 201, "POST", "/v1/payments", walletB, "Content-Type: application/json",
		create(`,"amount_msat":5000,"max_hold_seconds":3600,"retry_policy":"fast-fail","sender_node":"`+carol+`"`))
	add("create-sender-without-channel", 503, "POST", "/v1/payments", walletA, "",
		create(`,"amount_msat":1000,"sender_node":"`+stranger.String()+`"`))
	add("create-idempotent", 201, "POST", "/v1/payments", walletA, "Idempotency-Key: seed-1", create(`,"amount_msat":1000`))
	add("create-idempotent-again", 200, "POST", "/v1/payments", walletA, "Idempotency-Key: seed-1", create(`,"amount_msat":1000`))
	add("create-idempotent-other-body", 400, "POST", "/v1/payments", walletA, "Idempotency-Key: seed-1", create(`,"amount_msat":2000`))
	add("create-admin", 201, "POST", "/v1/payments", admin, "", create(`,"amount_msat":3000`))
	add("create-wrong-receiver", 422, "POST", "/v1/payments", walletA, "",
		[]byte(`{"receiver_key":"`+stranger.String()+`","receiver_lsp":"`+carol+`","amount_msat":1000}`))
	add("create-unreachable-lsp", 503, "POST", "/v1/payments", walletA, "",
		[]byte(`{"receiver_key":"`+dave+`","receiver_lsp":"`+nobody.String()+`","amount_msat":1000}`))
	add("create-too-large-for-channels", 503, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":9999999000`))
	add("create-over-limit", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":10000000001`))
	add("create-malformed", 400, "POST", "/v1/payments", walletA, "", []byte(`{"receiver_key":`))
	add("create-empty", 400, "POST", "/v1/payments", walletA, "", nil)
	add("create-not-object", 400, "POST", "/v1/payments", walletA, "", []byte(`[1,2]`))
	add("create-null", 400, "POST", "/v1/payments", walletA, "", []byte(`null`))
	add("create-unknown-field", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":1000,"amount_sat":1`))
	add("create-two-objects", 400, "POST", "/v1/payments", walletA, "", append(create(`,"amount_msat":1`), create(`,"amount_msat":1`)...))
	add("create-string-amount", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":"1000"`))
	add("create-zero-amount", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":0`))
	add("create-bad-key", 400, "POST", "/v1/payments", walletA, "",
		[]byte(`{"receiver_key":"02zz","receiver_lsp":"`+carol+`","amount_msat":1000}`))
	add("create-bad-policy", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":1000,"retry_policy":"eager"`))
	add("create-hold-overflow", 400, "POST", "/v1/payments", walletA, "", create(`,"amount_msat":1000,"max_hold_seconds":18446744073709551615`))
	add("create-bad-idempotency-key", 400, "POST", "/v1/payments", walletA, "Idempotency-Key: a b", create(`,"amount_msat":1000`))
	add("create-two-idempotency-keys", 400, "POST", "/v1/payments", walletA, "Idempotency-Key: a\nIdempotency-Key: b", create(`,"amount_msat":1000`))
	add("create-oversized", 413, "POST", "/v1/payments", walletA, "",
		create(`,"amount_msat":1000,"retry_policy":"`+strings.Repeat("x", 17<<10)+`"`))
	add("create-no-token", 401, "POST", "/v1/payments", none, "", create(`,"amount_msat":1000`))
	add("create-revoked-token", 401, "POST", "/v1/payments", revoked, "", create(`,"amount_msat":1000`))
	add("create-malformed-token", 401, "POST", "/v1/payments", malformed, "", create(`,"amount_msat":1000`))
	add("get", 200, "GET", "/v1/payments/$PAYMENT", walletA, "", nil)
	add("get-other-wallets", 404, "GET", "/v1/payments/$OTHER", walletA, "", nil)
	add("get-admin", 200, "GET", "/v1/payments/$OTHER", admin, "", nil)
	add("get-bad-id", 404, "GET", "/v1/payments/xyz", walletA, "", nil)
	add("list", 200, "GET", "/v1/payments?state=created&limit=10&receiver="+dave, walletA, "", nil)
	add("list-admin", 200, "GET", "/v1/payments?owner=wallet-b&created_after=2026-01-01T00:00:00Z", admin, "", nil)
	add("list-unknown-param", 400, "GET", "/v1/payments?colour=red", walletA, "", nil)
	add("list-others", 403, "GET", "/v1/payments?owner=wallet-b", walletA, "", nil)
	add("list-bad-cursor", 400, "GET", "/v1/payments?cursor=zzz", walletA, "", nil)
	add("list-bad-limit", 400, "GET", "/v1/payments?limit=0", walletA, "", nil)
	add("cancel-other-wallets", 404, "POST", "/v1/payments/$OTHER/cancel", walletA, "", nil)
	add("cancel", 200, "POST", "/v1/payments/$PAYMENT/cancel", walletA, "", nil)
	add("cancel-again", 200, "POST", "/v1/payments/$PAYMENT/cancel", walletA, "", []byte(`{}`))
	add("cancel-admin", 200, "POST", "/v1/payments/$OTHER/cancel", admin, "", nil)
	add("events", 200, "GET", "/v1/events?after=1", walletA, "", nil)
	add("events-resume", 200, "GET", "/v1/events", admin, "Last-Event-ID: 2", nil)
	add("events-beyond", 400, "GET", "/v1/events", walletA, "Last-Event-ID: 999999", nil)
	add("events-bad-after", 400, "GET", "/v1/events?after=x", walletA, "", nil)
	add("events-unknown-param", 400, "GET", "/v1/events?before=1", walletA, "", nil)
	add("method-not-allowed", 405, "DELETE", "/v1/payments", walletA, "", nil)
	add("put-payment", 405, "PUT", "/v1/payments/$PAYMENT", walletA, "", create(`,"amount_msat":1`))
	add("unknown-path", 404, "GET", "/v2/payments", walletA, "", nil)
	add("unclean-path", 307, "POST", "/v1//payments", walletA, "", create(`,"amount_msat":1000`))
	return out
}

// The seeds of FuzzAPI are current (-update rewrites them), and each gets
// its status: they are valid requests of every route and broken ones.
func TestAPIFuzzSeeds(t *testing.T) {
	z := newAPIFuzz(t)
	seeds := apiSeeds(z.dave.String(), z.carol.String())
	var corpus []fuzzcorpus.Seed
	for _, s := range seeds {
		corpus = append(corpus, s.seed)
		a := s.seed.Args
		got := z.do(t, a[0].(string), a[1].(string), a[2].(byte), a[3].(string), a[4].([]byte))
		if got != s.want {
			t.Errorf("seed %s: status %d, want %d", s.seed.Name, got, s.want)
		}
	}
	fuzzcorpus.Check(t, "FuzzAPI", corpus, *update)
}
