package receiverlsp

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// FuzzLSPS5 calls lsps5.set_webhook, lsps5.list_webhooks and
// lsps5.remove_webhook (method, modulo 3) with any params, as a receiver
// registered over HTTP, one with webhooks set over LSPS0, or a stranger
// (peer, modulo 3), through an lsps0.Server the role's RegisterLSPS
// registered them on, as lnd's custom messages bring them. Each answer
// must be one JSON-RPC 2.0 response with the request's id, an error only
// with a code of JSON-RPC's or bLIP-55's and never -32603; an error must
// change nothing in the database; and a result must say what is stored:
// set_webhook's webhook and count, list_webhooks' names, remove_webhook's
// removal. The seeds, in testdata/fuzz/FuzzLSPS5, are
// TestLSPS5FuzzSeeds'.
func FuzzLSPS5(f *testing.F) {
	z := newLSPS5Fuzz(f)
	f.Fuzz(func(t *testing.T, method, peer byte, params []byte) {
		z.do(t, method, peer, params)
	})
}

// lsps5Methods are FuzzLSPS5's methods, by its method modulo 3.
var lsps5Methods = []string{client.MethodSetWebhook, client.MethodListWebhooks,
	client.MethodRemoveWebhook}

// lsps5Codes are the error codes the LSPS5 methods may answer.
var lsps5Codes = []int{lsps0.CodeInvalidParams, client.LSPS5TooLong,
	client.LSPS5URLParseError, client.LSPS5UnsupportedProtocol,
	client.LSPS5TooManyWebhooks, client.LSPS5AppNameNotFound}

type lsps5Fuzz struct {
	*env
	server *lsps0.Server
	peers  []onionmsg.NodeKey
	ro     *sql.DB
}

func newLSPS5Fuzz(t testing.TB) *lsps5Fuzz {
	e := newEnv(t, func(c *Config) { c.Options.Webhook.Max = 3 })
	z := &lsps5Fuzz{env: e, server: lsps0.NewServer(testkit.Quiet()), ro: e.readOnly(t)}
	t.Cleanup(func() { z.ro.Close() })
	e.role.RegisterLSPS(z.server)
	z.peers = []onionmsg.NodeKey{e.registered(0, "https://wallet.example/0").key,
		e.receiver(1).key, e.receiver(2).key}
	z.lspsOK(z.peers[1], client.MethodSetWebhook, setParams("phone", "https://push.example/1"), nil)
	z.lspsOK(z.peers[1], client.MethodSetWebhook, setParams("tablet", "https://push.example/2"), nil)
	return z
}

// lsps5Request is the JSON-RPC request of method with params as they
// come, none if empty.
func lsps5Request(method string, params []byte) []byte {
	req := `{"jsonrpc":"2.0","id":"fuzz","method":"` + method + `"`
	if len(params) > 0 {
		req += `,"params":` + string(params)
	}
	return []byte(req + "}")
}

// do makes one call and checks what FuzzLSPS5 promises of it. It returns
// the error code, 0 for a result.
func (z *lsps5Fuzz) do(t testing.TB, method, peer byte, params []byte) int {
	t.Helper()
	m := lsps5Methods[int(method)%len(lsps5Methods)]
	who := z.peers[int(peer)%len(z.peers)]
	req := lsps5Request(m, params)
	before := dumpTables(t, z.ro)
	resp := z.server.Answer(z.ctx, who, req)
	after := dumpTables(t, z.ro)
	res, lerr := checkLSPSReply(t, req, resp)
	if lerr != nil {
		if lerr.Code != lsps0.CodeParseError && !slices.Contains(lsps5Codes, lerr.Code) {
			t.Fatalf("%s: error %d: %s", m, lerr.Code, resp)
		}
		if after != before {
			t.Fatalf("%s answered %s and changed the database:\nbefore:\n%s\nafter:\n%s",
				m, resp, before, after)
		}
		return lerr.Code
	}
	hooks, err := z.store.Webhooks(z.ctx, vertex(who))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(hooks))
	urls := map[string]string{}
	for i, h := range hooks {
		names[i], urls[h.AppName] = h.AppName, h.URL
	}
	// The params as the method read them: it succeeded, so they decode,
	// and its string params are JSON strings.
	var p struct {
		AppName string `json:"app_name"`
		Webhook string `json:"webhook"`
	}
	var raw map[string]json.RawMessage
	if m != client.MethodListWebhooks {
		if err := json.Unmarshal(params, &p); err != nil || json.Unmarshal(params, &raw) != nil {
			t.Fatalf("%s succeeded with params %q: %v", m, params, err)
		}
		for name, v := range raw {
			if !bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) {
				t.Fatalf("%s succeeded with %s %s", m, name, v)
			}
		}
	}
	switch m {
	case client.MethodSetWebhook:
		var r client.SetWebhookResult
		if err := strictJSON(res, &r); err != nil || r.MaxWebhooks != 3 ||
			r.NumWebhooks != len(hooks) || r.NumWebhooks > r.MaxWebhooks ||
			urls[p.AppName] != p.Webhook || r.NoChange && after != before {
			t.Fatalf("set %q to %q: %s (%v); stored %v", p.AppName, p.Webhook, res, err, urls)
		}
	case client.MethodListWebhooks:
		var r client.ListWebhooksResult
		if err := strictJSON(res, &r); err != nil || r.MaxWebhooks != 3 ||
			!slices.Equal(r.AppNames, names) || after != before {
			t.Fatalf("listed %s (%v); stored %v", res, err, names)
		}
	case client.MethodRemoveWebhook:
		if _, ok := urls[p.AppName]; ok || string(res) != "{}" {
			t.Fatalf("removed %q: %s; stored %v", p.AppName, res, urls)
		}
	}
	return 0
}

// strictJSON decodes a result into v, refusing fields v does not have.
func strictJSON(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// The seeds of FuzzLSPS5 are current (-update rewrites them), and each
// gets its answer: they are valid calls of the three methods and broken
// ones.
func TestLSPS5FuzzSeeds(t *testing.T) {
	const (
		set byte = iota
		list
		remove
	)
	const (
		registered byte = iota
		hooked
		stranger
	)
	long := strings.Repeat("a", maxAppName+1)
	seeds := []struct {
		name   string
		method byte
		peer   byte
		params string
		want   int
	}{
		{"set", set, registered, `{"app_name":"wallet","webhook":"https://push.example/w"}`, 0},
		{"set-same", set, registered, `{"app_name":"wallet","webhook":"https://push.example/w"}`, 0},
		{"set-replace", set, hooked, `{"app_name":"phone","webhook":"https://push.example/3?x=1"}`, 0},
		{"set-stranger", set, stranger, `{"app_name":"Ω app","webhook":"http://127.0.0.1:9/hook"}`, 0},
		{"set-too-many", set, hooked, `{"app_name":"watch","webhook":"https://push.example/4"}`, 0},
		{"set-one-too-many", set, hooked, `{"app_name":"car","webhook":"https://push.example/5"}`, client.LSPS5TooManyWebhooks},
		{"set-long-name", set, registered, `{"app_name":"` + long + `","webhook":"https://push.example/"}`, client.LSPS5TooLong},
		{"set-long-url", set, registered, `{"app_name":"x","webhook":"https://push.example/` + strings.Repeat("u", 1024) + `"}`, client.LSPS5TooLong},
		{"set-not-url", set, registered, `{"app_name":"x","webhook":"push example"}`, client.LSPS5URLParseError},
		{"set-user-info", set, registered, `{"app_name":"x","webhook":"https://me@push.example/"}`, client.LSPS5URLParseError},
		{"set-http", set, registered, `{"app_name":"x","webhook":"http://push.example/"}`, client.LSPS5UnsupportedProtocol},
		{"set-null-name", set, registered, `{"app_name":null,"webhook":"https://push.example/"}`, lsps0.CodeInvalidParams},
		{"set-no-webhook", set, registered, `{"app_name":"x"}`, lsps0.CodeInvalidParams},
		{"set-no-params", set, registered, ``, lsps0.CodeInvalidParams},
		{"set-name-number", set, registered, `{"app_name":7,"webhook":"https://push.example/"}`, lsps0.CodeInvalidParams},
		{"set-unknown-param", set, registered, `{"app_name":"x","webhook":"https://push.example/","colour":"red"}`, lsps0.CodeInvalidParams},
		{"set-by-position", set, registered, `["x","https://push.example/"]`, lsps0.CodeInvalidParams},
		{"set-broken-json", set, registered, `{"app_name":`, lsps0.CodeParseError},
		{"list", list, hooked, `{}`, 0},
		{"list-none", list, stranger, ``, 0},
		{"list-param", list, registered, `{"app_name":"x"}`, lsps0.CodeInvalidParams},
		{"remove", remove, hooked, `{"app_name":"tablet"}`, 0},
		{"remove-missing", remove, registered, `{"app_name":"nothing"}`, client.LSPS5AppNameNotFound},
		{"remove-long", remove, registered, `{"app_name":"` + long + `"}`, client.LSPS5AppNameNotFound},
		{"remove-null-name", remove, registered, `{"app_name":null}`, lsps0.CodeInvalidParams},
	}
	z := newLSPS5Fuzz(t)
	var corpus []fuzzcorpus.Seed
	for _, s := range seeds {
		corpus = append(corpus, fuzzcorpus.Seed{Name: s.name,
			Args: []any{s.method, s.peer, []byte(s.params)}})
		if got := z.do(t, s.method, s.peer, []byte(s.params)); got != s.want {
			t.Errorf("seed %s: code %d, want %d", s.name, got, s.want)
		}
	}
	fuzzcorpus.Check(t, "FuzzLSPS5", corpus, *update)
}
