package receiverlsp

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/lntypes"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// FuzzAPI sends the receiver API requests of any method, path, headers and
// body, as net/http's server would parse them off the wire, with no token,
// receiver 0's, receiver 1's or a forged one (auth). Every answer must be
// JSON, every refusal the API's error body with the code of its status and
// never a 5xx, and a request that is refused (or an LSPS0 request answered
// with an error) must change nothing in the database. What succeeds must
// say what it did: a registration's token is its receiver's, an upload's
// accepted count is the invoices added, a release leaves its item
// released. (net/http's ServeMux redirects a path that is not clean to its
// clean form before any route sees it: the one answer that is not JSON.)
// The seeds, in testdata/fuzz/FuzzAPI, are TestAPIFuzzSeeds'.
func FuzzAPI(f *testing.F) {
	z := newAPIFuzz(f)
	f.Fuzz(func(t *testing.T, method, target string, auth byte, header string, body []byte) {
		z.do(t, method, target, auth, header, body)
	})
}

// fuzzChallengeKey is the challenge key of apiFuzz's role, so that a seed
// can carry a challenge it issued.
var fuzzChallengeKey = bytes.Repeat([]byte{0xc4}, 32)

// apiFuzz is the receiver API with the receivers and mailbox items the
// seeds refer to, the same in every env: two registered receivers, and
// held payments from sender LSP 0 whose hold ids, invoices and release
// secrets come from fuzzFill.
type apiFuzz struct {
	*env
	h      http.Handler
	mux    *http.ServeMux
	rcs    []*receiver // by FuzzAPI's auth, modulo its length; nil: no token
	tokens []string
	// items: "a" and "c" are receiver 0's, "b" receiver 1's.
	items map[string]*onionmsg.HeldHTLCAvailable
	// ro reads the database for dumpTables: one connection for the run,
	// not one per snapshot.
	ro *sql.DB
}

func newAPIFuzz(t testing.TB) *apiFuzz {
	e := newEnv(t, func(c *Config) { c.ChallengeKey = fuzzChallengeKey })
	z := &apiFuzz{env: e, h: e.role.Handler(), ro: e.readOnly(t)}
	t.Cleanup(func() { z.ro.Close() })
	z.mux = z.h.(*http.ServeMux)
	r0, r1 := e.registered(0, ""), e.registered(1, "https://wallet.example/hook")
	z.rcs = []*receiver{nil, r0, r1, nil}
	z.tokens = []string{"", r0.client.Token(), r1.client.Token(),
		r0.key.String() + "." + strings.Repeat("5a", 32)}
	z.items = map[string]*onionmsg.HeldHTLCAvailable{
		"a": z.fixedHold(r0, 1), "b": z.fixedHold(r1, 2), "c": z.fixedHold(r0, 3)}
	return z
}

// fuzzFill is 32 bytes of i: the fixtures' ids, secrets and nonces.
func fuzzFill(i byte) [32]byte {
	var b [32]byte
	for j := range b {
		b[j] = i
	}
	return b
}

// fixedInvoice is an invoice of rc for amount that is the same in every
// env: its preimage and payment address are fuzzFill(i).
func (z *apiFuzz) fixedInvoice(rc *receiver, i byte) string {
	pre, addr := lntypes.Preimage(fuzzFill(i)), fuzzFill(i)
	return z.invoice(rc, testkit.InvoiceOpts{Amount: 50_000, Preimage: &pre, PaymentAddr: &addr})
}

// fixedHold stocks rc with fixedInvoice(i), has sender LSP 0 reserve it for
// hold fuzzFill(i), and puts the held payment in rc's mailbox.
func (z *apiFuzz) fixedHold(rc *receiver, i byte) *onionmsg.HeldHTLCAvailable {
	z.t.Helper()
	inv := z.fixedInvoice(rc, i)
	if resp, err := rc.client.Upload(z.ctx, []string{inv}); err != nil || resp.Accepted != 1 {
		z.t.Fatalf("upload: %+v, %v", resp, err)
	}
	fill := fuzzFill(i)
	req := request(rc, onionmsg.HoldID(fill[:16]), 50_000, z.clock.Now().Add(time.Hour))
	reply, err := z.role.answerInvoiceRequest(z.ctx, senderKey(0), req)
	if err != nil || reply.Invoice != inv {
		z.t.Fatalf("reserve: %+v, %v", reply, err)
	}
	m := z.held(0, req, reply)
	m.ReleaseSecret = fuzzFill(i + 100)
	if err := z.role.acceptHeld(z.ctx, senderKey(0), m); err != nil {
		z.t.Fatal(err)
	}
	return m
}

// apiStatus is the status of each error code.
var apiStatus = map[string]int{
	client.CodeInvalidRequest: http.StatusBadRequest, client.CodeUnauthorized: http.StatusUnauthorized,
	client.CodeForbidden: http.StatusForbidden, client.CodeNotFound: http.StatusNotFound,
	client.CodeConflict: http.StatusConflict, client.CodePayloadTooLarge: http.StatusRequestEntityTooLarge,
}

// do serves one request and checks what FuzzAPI promises of it. It returns
// the status, 0 for a request net/http answers without the API or a
// long-poll its client left.
func (z *apiFuzz) do(t testing.TB, method, target string, auth byte, header string, body []byte) int {
	t.Helper()
	req, ok := testkit.FuzzRequest(method, target, z.tokens[int(auth)%len(z.tokens)], header, body)
	if !ok {
		return 0
	}
	who := z.rcs[int(auth)%len(z.rcs)]
	_, pattern := z.mux.Handler(req)
	longPoll := pattern == "GET /v1/mailbox/{sender_lsp}/{hold_id}"
	patience := testkit.FuzzPatience
	if longPoll {
		patience = 50 * time.Millisecond // the client leaves
	}
	var stock holdstore.InvoiceCounts
	if who != nil {
		stock = z.stock(t, who)
	}
	before := dumpTables(t, z.ro)
	rec, left := testkit.ServeFuzz(t, z.h, req, patience)
	after := dumpTables(t, z.ro)
	if left {
		if !longPoll {
			t.Fatalf("%s %s: no answer in %v", method, target, patience)
		}
		if after != before {
			t.Fatalf("%s %s: a read changed the database", method, target)
		}
		return 0
	}
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
		if apiStatus[code] != status {
			t.Fatalf("%s %s: %d with code %s (%s)", method, target, status, code, msg)
		}
	}

	changes := false
	if success {
		switch pattern {
		case "POST /v1/register":
			var resp client.RegisterResponse
			err := json.Unmarshal(rec.Body.Bytes(), &resp)
			if err == nil {
				var key onionmsg.NodeKey
				key, err = z.role.authenticate(z.ctx, resp.Token)
				if err == nil && key != resp.NodeKey {
					t.Fatalf("registered %s, its token is %s's", resp.NodeKey, key)
				}
			}
			if err != nil {
				t.Fatalf("registered: %s: %v", rec.Body, err)
			}
			changes = true
		case "POST /v1/invoices":
			var resp client.UploadResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			now := z.stock(t, who)
			added := now.Available + now.Expired + now.Reserved -
				stock.Available - stock.Expired - stock.Reserved
			if resp.Accepted != added || resp.Accepted+resp.Rejected != len(resp.Results) {
				t.Fatalf("upload: accepted %d, rejected %d of %d, %d added",
					resp.Accepted, resp.Rejected, len(resp.Results), added)
			}
			changes = resp.Accepted > 0
		case "POST /v1/releases":
			var it client.Item
			if err := json.Unmarshal(rec.Body.Bytes(), &it); err != nil ||
				it.State != client.StateReleased || who == nil || it.ReceiverKey != who.key {
				t.Fatalf("released %s (%v) as %v", rec.Body, err, who)
			}
			changes = true
		case "POST /v1/lsps0":
			_, lerr := checkLSPSReply(t, body, rec.Body.Bytes())
			changes = lerr == nil
		}
	}
	if !changes && after != before {
		t.Fatalf("%s %s answered %d %s and changed the database:\nbefore:\n%s\nafter:\n%s",
			method, target, status, rec.Body, before, after)
	}
	return status
}

// stock is rc's invoices, by kind.
func (z *apiFuzz) stock(t testing.TB, rc *receiver) holdstore.InvoiceCounts {
	t.Helper()
	c, err := z.store.CountInvoices(z.ctx, vertex(rc.key), z.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkLSPSReply fails unless resp is one JSON-RPC 2.0 response to req:
// "jsonrpc": "2.0", req's string id (null only with -32700), and exactly
// one of a result and an error with a code and a message. It returns the
// result or the error.
func checkLSPSReply(t testing.TB, req, resp []byte) (json.RawMessage, *lsps0.Error) {
	t.Helper()
	var r map[string]json.RawMessage
	if err := json.Unmarshal(resp, &r); err != nil || string(r["jsonrpc"]) != `"2.0"` {
		t.Fatalf("not a JSON-RPC 2.0 response (%v): %s", err, resp)
	}
	res, hasResult := r["result"]
	rawErr, hasError := r["error"]
	if hasResult == hasError || len(r) != 3 {
		t.Fatalf("response needs jsonrpc, id and one of result and error: %s", resp)
	}
	var lerr *lsps0.Error
	if hasError {
		var e struct {
			Code    *int            `json:"code"`
			Message *string         `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(rawErr, &e); err != nil || e.Code == nil || e.Message == nil {
			t.Fatalf("error is not {code, message}: %s", resp)
		}
		lerr = &lsps0.Error{Code: *e.Code, Message: *e.Message, Data: e.Data}
		if lerr.Code == lsps0.CodeInternalError {
			t.Fatalf("an internal error: %s", resp)
		}
	}
	if id := string(r["id"]); id == "null" {
		if lerr == nil || lerr.Code != lsps0.CodeParseError {
			t.Fatalf("null id with other than -32700: %s", resp)
		}
	} else {
		var sent struct{ ID json.RawMessage }
		var a, b string
		if json.Unmarshal(req, &sent) != nil || json.Unmarshal(r["id"], &a) != nil ||
			json.Unmarshal(sent.ID, &b) != nil || a != b {
			t.Fatalf("response id %s to a request of id %s", r["id"], sent.ID)
		}
	}
	return res, lerr
}

type apiSeed struct {
	seed fuzzcorpus.Seed
	want int
}

// seeds are FuzzAPI's seeds, each with the status it gets when they are
// sent in this order to a new apiFuzz.
func (z *apiFuzz) seeds(t testing.TB) []apiSeed {
	const (
		none byte = iota
		rc0
		rc1
		forged
	)
	var out []apiSeed
	add := func(name string, want int, method, target string, auth byte, header string, body []byte) {
		out = append(out, apiSeed{fuzzcorpus.Seed{Name: name,
			Args: []any{method, target, auth, header, body}}, want})
	}
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r0, r1 := z.rcs[1], z.rcs[2]
	_, r2 := testkit.Key(receiverIndex + 2)
	sender := senderKey(0).String()
	item := func(name string) string {
		m := z.items[name]
		return "/v1/mailbox/" + sender + "/" + hex.EncodeToString(m.HoldID[:])
	}
	release := func(name string, rc *receiver, ln bool) []byte {
		rel := onionmsg.NewRelease(z.items[name], z.clock.Now(), 10*time.Minute)
		var err error
		if ln {
			err = rel.SignLN(z.ctx, rc.signer)
		} else {
			err = rel.Sign(z.ctx, rc.signer)
		}
		raw, eerr := rel.Encode()
		if err != nil || eerr != nil {
			t.Fatal(err, eerr)
		}
		return js(client.ReleaseRequest{Release: hex.EncodeToString(raw)})
	}

	add("challenge", 200, "POST", "/v1/register/challenge", none, "", js(client.ChallengeRequest{NodeKey: r2}))
	add("challenge-no-key", 400, "POST", "/v1/register/challenge", none, "", []byte(`{}`))
	add("challenge-bad-key", 400, "POST", "/v1/register/challenge", none, "", []byte(`{"node_key":"02zz"}`))
	add("challenge-unknown-field", 400, "POST", "/v1/register/challenge", none, "",
		[]byte(`{"node_key":"`+r2.String()+`","webhook":"x"}`))
	add("challenge-trailing", 400, "POST", "/v1/register/challenge", none, "",
		append(js(client.ChallengeRequest{NodeKey: r2}), '{'))
	add("challenge-oversized", 413, "POST", "/v1/register/challenge", none, "",
		[]byte(`{"node_key":"`+strings.Repeat(" ", smallBody)+`"}`))
	add("register", 200, "POST", "/v1/register", none, "", z.registration(t, 2, false, 0, "https://wallet.example/2"))
	add("register-again", 409, "POST", "/v1/register", none, "", z.registration(t, 2, false, 0, "https://wallet.example/2"))
	add("register-ln", 200, "POST", "/v1/register", none, "", z.registration(t, 3, true, 0, ""))
	add("register-expired", 400, "POST", "/v1/register", none, "", z.registration(t, 4, false, -10*time.Minute, ""))
	add("register-bad-webhook", 400, "POST", "/v1/register", none, "", z.registration(t, 5, false, 0, "http://wallet.example/"))
	forgedReg := z.registration(t, 6, false, 0, "")
	forgedReg = bytes.Replace(forgedReg, []byte(`"signature":"`), []byte(`"signature":"00`), 1)
	add("register-forged", 400, "POST", "/v1/register", none, "", forgedReg)
	add("register-no-key", 400, "POST", "/v1/register", none, "", []byte(`{"challenge":"00"}`))
	add("invoices", 200, "POST", "/v1/invoices", rc0, "",
		js(client.UploadRequest{Invoices: []string{z.fixedInvoice(r0, 10), z.fixedInvoice(r0, 11)}}))
	add("invoices-again", 200, "POST", "/v1/invoices", rc0, "",
		js(client.UploadRequest{Invoices: []string{z.fixedInvoice(r0, 10)}}))
	add("invoices-others", 200, "POST", "/v1/invoices", rc0, "",
		js(client.UploadRequest{Invoices: []string{z.fixedInvoice(r1, 12), "lnbcrt1garbage"}}))
	add("invoices-no-token", 401, "POST", "/v1/invoices", none, "",
		js(client.UploadRequest{Invoices: []string{z.fixedInvoice(r0, 13)}}))
	add("invoices-forged-token", 401, "POST", "/v1/invoices", forged, "",
		js(client.UploadRequest{Invoices: []string{z.fixedInvoice(r0, 13)}}))
	add("invoices-not-strings", 400, "POST", "/v1/invoices", rc0, "", []byte(`{"invoices":[1,2]}`))
	add("invoices-stock", 200, "GET", "/v1/invoices", rc0, "", nil)
	add("mailbox", 200, "GET", "/v1/mailbox", rc0, "", nil)
	add("item", 200, "GET", item("a"), rc0, "", nil)
	add("item-others", 404, "GET", item("b"), rc0, "", nil)
	add("item-bad-hold", 400, "GET", "/v1/mailbox/"+sender+"/xyz", rc0, "", nil)
	add("item-bad-sender", 400, "GET", "/v1/mailbox/02zz/"+strings.Repeat("00", 16), rc0, "", nil)
	add("item-bad-wait", 400, "GET", item("a")+"?wait=soon", rc0, "", nil)
	add("item-bad-after", 400, "GET", item("a")+"?after=-1", rc0, "", nil)
	add("item-long-poll", 0, "GET", item("a")+"?wait=30s&after=1", rc0, "", nil)
	add("release", 202, "POST", "/v1/releases", rc0, "", release("a", r0, false))
	add("release-again", 202, "POST", "/v1/releases", rc0, "", release("a", r0, false))
	add("release-ln", 202, "POST", "/v1/releases", rc0, "", release("c", r0, true))
	add("release-others", 403, "POST", "/v1/releases", rc0, "", release("b", r1, false))
	add("release-forged", 400, "POST", "/v1/releases", rc1, "", release("b", r0, false))
	add("release-not-hex", 400, "POST", "/v1/releases", rc0, "", []byte(`{"release":"zz"}`))
	add("release-not-tlv", 400, "POST", "/v1/releases", rc0, "", []byte(`{"release":"00ff"}`))
	add("lsps0-list-protocols", 200, "POST", "/v1/lsps0", rc0, "",
		[]byte(`{"jsonrpc":"2.0","id":"1","method":"lsps0.list_protocols","params":{}}`))
	add("lsps0-set-webhook", 200, "POST", "/v1/lsps0", rc0, "",
		[]byte(`{"jsonrpc":"2.0","id":"2","method":"lsps5.set_webhook","params":{"app_name":"fuzz","webhook":"https://wallet.example/fuzz"}}`))
	add("lsps0-invoice-stock", 200, "POST", "/v1/lsps0", rc1, "",
		[]byte(`{"jsonrpc":"2.0","id":"3","method":"asynclsp.invoice_stock","params":{}}`))
	add("lsps0-bad-params", 200, "POST", "/v1/lsps0", rc0, "",
		[]byte(`{"jsonrpc":"2.0","id":"4","method":"lsps5.remove_webhook","params":["fuzz"]}`))
	add("lsps0-not-json", 200, "POST", "/v1/lsps0", rc0, "", []byte(`{"jsonrpc":`))
	add("lsps0-no-token", 401, "POST", "/v1/lsps0", none, "",
		[]byte(`{"jsonrpc":"2.0","id":"1","method":"lsps0.list_protocols","params":{}}`))
	add("lsps0-oversized", 413, "POST", "/v1/lsps0", rc0, "",
		[]byte(`{"jsonrpc":"2.0","id":"`+strings.Repeat("x", lsps0.MaxMessageSize)+`"}`))
	add("openapi", 200, "GET", "/v1/openapi.json", none, "", nil)
	add("unknown-path", 404, "GET", "/v1/receivers", rc0, "", nil)
	add("wrong-method", 404, "DELETE", "/v1/invoices", rc0, "", nil)
	add("unclean-path", 307, "POST", "/v1//invoices", rc0, "", []byte(`{"invoices":[]}`))
	return out
}

// registration is a registration of receiver i as a wallet makes it, the
// same in every env: a challenge of apiFuzz's role with nonce fuzzFill(i),
// expiring in five minutes plus expiry, signed with BIP-340 or as an
// ln_signature.
func (z *apiFuzz) registration(t testing.TB, i int, ln bool, expiry time.Duration, webhook string) []byte {
	priv, key := testkit.Key(receiverIndex + i)
	c := &client.Challenge{LSPKey: z.lsp, ReceiverKey: key, Nonce: fuzzFill(byte(i)),
		ExpiresAt: z.clock.Now().Add(5*time.Minute + expiry)}
	copy(c.MAC[:], z.role.challengeMAC(c))
	signer := onionmsg.NewPrivKeySigner(priv)
	var sig string
	if ln {
		var err error
		if sig, err = signer.SignMessage(z.ctx, c.LNMessage()); err != nil {
			t.Fatal(err)
		}
	} else {
		s, err := signer.SignTagged(z.ctx, []byte(onionmsg.TagRegister), c.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sig = hex.EncodeToString(s[:])
	}
	b, err := json.Marshal(client.RegisterRequest{NodeKey: key,
		Challenge: hex.EncodeToString(c.Bytes()), Signature: sig, WebhookURL: webhook})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The seeds of FuzzAPI are current (-update rewrites them), and each gets
// its status: they are valid requests of every route and broken ones.
func TestAPIFuzzSeeds(t *testing.T) {
	z := newAPIFuzz(t)
	var corpus []fuzzcorpus.Seed
	for _, s := range z.seeds(t) {
		corpus = append(corpus, s.seed)
		a := s.seed.Args
		got := z.do(t, a[0].(string), a[1].(string), a[2].(byte), a[3].(string), a[4].([]byte))
		if got != s.want {
			t.Errorf("seed %s: status %d, want %d", s.seed.Name, got, s.want)
		}
	}
	fuzzcorpus.Check(t, "FuzzAPI", corpus, *update)
}
