package receiverlsp

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

func sw(num, max int, noChange bool) client.SetWebhookResult {
	return client.SetWebhookResult{NumWebhooks: num, MaxWebhooks: max, NoChange: noChange}
}

func setParams(app, url string) client.SetWebhookParams {
	return client.SetWebhookParams{AppName: app, Webhook: url}
}

// lsps0.list_protocols lists LSPS5, and nothing for asynclsp's own methods.
func TestListProtocols(t *testing.T) {
	e := newEnv(t)
	var res lsps0.ListProtocolsResult
	e.lspsOK(e.receiver(0).key, "lsps0.list_protocols", nil, &res)
	if !slices.Equal(res.Protocols, []int{5}) {
		t.Fatalf("protocols %v, want [5]", res.Protocols)
	}
}

// set_webhook inserts or replaces by app_name up to the maximum, says
// no_change for the same URL again; list_webhooks and remove_webhook see
// what it stored.
func TestSetListRemoveWebhooks(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Options.Webhook.Max = 2 })
	peer := e.receiver(0).key
	set := func(app, url string) client.SetWebhookResult {
		t.Helper()
		var res client.SetWebhookResult
		e.lspsOK(peer, client.MethodSetWebhook, setParams(app, url), &res)
		return res
	}
	list := func() client.ListWebhooksResult {
		t.Helper()
		var res client.ListWebhooksResult
		e.lspsOK(peer, client.MethodListWebhooks, nil, &res)
		return res
	}
	if l := list(); l.AppNames == nil || len(l.AppNames) != 0 || l.MaxWebhooks != 2 {
		t.Fatalf("no webhooks yet: %+v", l)
	}
	for i, c := range []struct {
		app, url string
		want     client.SetWebhookResult
	}{
		{"My Wallet", "https://push.example/a?l=1", sw(1, 2, false)},
		{"My Wallet", "https://push.example/a?l=1", sw(1, 2, true)},
		{"Other", "https://push.example/b", sw(2, 2, false)},
		// Replacing at the maximum is allowed: it adds nothing.
		{"My Wallet", "https://push.example/a?l=2", sw(2, 2, false)},
		{"Other", "https://push.example/b", sw(2, 2, true)},
	} {
		if got := set(c.app, c.url); got != c.want {
			t.Fatalf("set %d (%s): %+v, want %+v", i, c.app, got, c.want)
		}
	}
	if l := list(); !slices.Equal(l.AppNames, []string{"My Wallet", "Other"}) {
		t.Fatalf("listed %v", l.AppNames)
	}
	hooks, _ := e.store.Webhooks(e.ctx, vertex(peer))
	if hooks[0].URL != "https://push.example/a?l=2" {
		t.Fatalf("stored %+v", hooks[0])
	}
	// The maximum, then room again after a removal.
	e.unchanged("a third webhook", func() {
		_, lerr := e.lsps(peer, client.MethodSetWebhook, setParams("Third", "https://push.example/c"))
		wantLSPSCode(t, "third", lerr, client.LSPS5TooManyWebhooks)
	})
	e.lspsOK(peer, client.MethodRemoveWebhook, client.RemoveWebhookParams{AppName: "Other"}, nil)
	if l := list(); !slices.Equal(l.AppNames, []string{"My Wallet"}) {
		t.Fatalf("after removing: %v", l.AppNames)
	}
	if got := set("Third", "https://push.example/c"); got != (sw(2, 2, false)) {
		t.Fatalf("third after a removal: %+v", got)
	}
	// Another peer sees none of them.
	var res client.ListWebhooksResult
	e.lspsOK(e.receiver(1).key, client.MethodListWebhooks, nil, &res)
	if len(res.AppNames) != 0 {
		t.Fatalf("another peer lists %v", res.AppNames)
	}
}

// Every error of 55:241-285, with LDK's messages, and the params errors of
// LSPS0; none changes anything.
func TestWebhookErrorCodes(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Options.Webhook.Max = 1 })
	peer := e.receiver(0).key
	e.lspsOK(peer, client.MethodSetWebhook, setParams("one", "https://a.example/"), nil)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, c := range []struct {
		name   string
		method string
		params any
		code   int
		msg    string
	}{
		{"app_name of 65 bytes", client.MethodSetWebhook,
			setParams(strings.Repeat("a", 65), "https://a.example/"),
			500, "App name exceeds maximum length"},
		{"app_name of 22 UTF-8 bytes", client.MethodSetWebhook,
			setParams(strings.Repeat("é", 33), "https://a.example/"),
			500, "App name exceeds maximum length"},
		// 55:125-128: escapes count as the bytes they take.
		{"app_name of 11 escapes", client.MethodSetWebhook,
			raw(`{"app_name":"` + strings.Repeat(`\u0041`, 11) + `","webhook":"https://a.example/"}`),
			500, "App name exceeds maximum length"},
		{"webhook of 1025", client.MethodSetWebhook,
			setParams("one", "https://a.example/"+strings.Repeat("a", 1025-len("https://a.example/"))),
			500, "Webhook URL exceeds maximum length"},
		{"not a URL", client.MethodSetWebhook, setParams("one", "test-app"),
			501, "Error parsing URL"},
		{"no host", client.MethodSetWebhook, setParams("one", "https:///hook"),
			501, "Error parsing URL"},
		{"not ASCII", client.MethodSetWebhook, setParams("one", "https://a.example/ü"),
			501, "Error parsing URL"},
		{"a space", client.MethodSetWebhook, setParams("one", "https://a.example/a b"),
			501, "Error parsing URL"},
		{"user info", client.MethodSetWebhook, setParams("one", "https://u:p@a.example/"),
			501, "Error parsing URL"},
		{"http to a remote host", client.MethodSetWebhook,
			setParams("one", "http://example.com/webhook"),
			502, "Unsupported protocol: HTTPS is required"},
		{"ftp", client.MethodSetWebhook, setParams("one", "ftp://example.com/webhook"),
			502, "Unsupported protocol: HTTPS is required"},
		{"ws+unix", client.MethodSetWebhook, setParams("one", "ws+unix://example.com/webhook"),
			502, "Unsupported protocol: HTTPS is required"},
		{"too many", client.MethodSetWebhook, setParams("two", "https://b.example/"),
			503, "Maximum number of webhooks allowed per client"},
		{"app_name not found", client.MethodRemoveWebhook,
			client.RemoveWebhookParams{AppName: "two"}, 1010, "App name not found"},
		{"remove a name too long to exist", client.MethodRemoveWebhook,
			client.RemoveWebhookParams{AppName: strings.Repeat("a", 65)}, 1010, "App name not found"},
		{"unknown param", client.MethodSetWebhook,
			raw(`{"app_name":"one","webhook":"https://a.example/","extra":1}`),
			lsps0.CodeInvalidParams, ""},
		{"no webhook", client.MethodSetWebhook, raw(`{"app_name":"one"}`),
			lsps0.CodeInvalidParams, ""},
		{"no app_name", client.MethodRemoveWebhook, raw(`{}`), lsps0.CodeInvalidParams, ""},
		{"app_name a number", client.MethodSetWebhook,
			raw(`{"app_name":1,"webhook":"https://a.example/"}`), lsps0.CodeInvalidParams, ""},
		{"params to list", client.MethodListWebhooks, raw(`{"app_name":"one"}`),
			lsps0.CodeInvalidParams, ""},
	} {
		e.unchanged(c.name, func() {
			_, lerr := e.lsps(peer, c.method, c.params)
			wantLSPSCode(t, c.name, lerr, c.code)
			if c.msg != "" && lerr.Message != c.msg {
				t.Errorf("%s: message %q, want LDK's %q", c.name, lerr.Message, c.msg)
			}
		})
	}
	// 55:249-251: too_many_webhooks says the maximum.
	_, lerr := e.lsps(peer, client.MethodSetWebhook, setParams("two", "https://b.example/"))
	data, _ := json.Marshal(lerr.Data)
	if string(data) != `{"max_webhooks":1}` {
		t.Fatalf("too_many_webhooks data %s", data)
	}
	_, lerr = e.lsps(peer, client.MethodSetWebhook,
		raw(`{"app_name":"one","webhook":"https://a.example/","extra":1}`))
	if data, _ := json.Marshal(lerr.Data); string(data) != `{"unrecognized":["extra"]}` {
		t.Fatalf("unknown param data %s", data)
	}
}

// An app_name of null is no JSON string: set_webhook and remove_webhook
// refuse it with -32602, as LDK does, and store nothing. It was read as the
// name "", so set_webhook stored a webhook under it. FuzzLSPS5's seed
// set-null-name found it.
func TestWebhookNullAppName(t *testing.T) {
	e := newEnv(t)
	peer := e.receiver(0).key
	for _, c := range []struct{ method, params string }{
		{client.MethodSetWebhook, `{"app_name":null,"webhook":"https://a.example/"}`},
		{client.MethodSetWebhook, `{"app_name": null ,"webhook":"https://a.example/"}`},
		{client.MethodRemoveWebhook, `{"app_name":null}`},
	} {
		e.unchanged(c.params, func() {
			_, lerr := e.lsps(peer, c.method, json.RawMessage(c.params))
			wantLSPSCode(t, c.params, lerr, lsps0.CodeInvalidParams)
		})
	}
}

// Webhooks are stored before the answer (55:190-191): a role on the same
// file after a restart lists them and sends them what is owed.
func TestWebhooksSurviveRestart(t *testing.T) {
	e := newEnv(t)
	phone, tablet := newWallet(e), newWallet(e)
	rc := e.registered(0, "")
	e.stock(rc, 20, 0)
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("phone", phone.url()), nil)
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("tablet", tablet.url()), nil)
	e.hold(0, rc) // payment_incoming owed, behind webhook_registered
	// Nothing ran: webhook_registered is owed to both, across the restart.
	e.restart()
	var res client.ListWebhooksResult
	e.lspsOK(rc.key, client.MethodListWebhooks, nil, &res)
	if !slices.Equal(res.AppNames, []string{"phone", "tablet"}) {
		t.Fatalf("after the restart: %v", res.AppNames)
	}
	e.run()
	for name, w := range map[string]*wallet{"phone": phone, "tablet": tablet} {
		testkit.Eventually(t, 5*time.Second, "payment_incoming to "+name, func() bool {
			return w.count(client.MethodPaymentIncoming) == 1
		})
		if ms := w.methods(); !slices.Equal(ms, []string{client.MethodWebhookRegistered,
			client.MethodPaymentIncoming}) {
			t.Fatalf("%s got %v", name, ms)
		}
	}
}

// A webhook whose URL changed gets webhook_registered before anything
// else, even when that takes retries and a payment is waiting; the old URL
// gets nothing more.
func TestWebhookRegisteredBeforeAnything(t *testing.T) {
	e := newEnv(t)
	old, changed := newWallet(e), newWallet(e)
	rc := e.registered(0, "")
	e.stock(rc, 20, 0)
	e.run()
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("phone", old.url()), nil)
	testkit.Eventually(t, 5*time.Second, "the first webhook_registered", func() bool {
		return old.count(client.MethodWebhookRegistered) == 1
	})

	changed.mu.Lock()
	changed.fail = []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable}
	changed.mu.Unlock()
	var res client.SetWebhookResult
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("phone", changed.url()), &res)
	if res.NoChange {
		t.Fatal("a new URL reported as no change")
	}
	e.hold(0, rc)
	testkit.Eventually(t, 10*time.Second, "payment_incoming to the changed webhook", func() bool {
		e.advance(time.Second) // the registration's retries
		return changed.count(client.MethodPaymentIncoming) == 1
	})
	if ms := changed.methods(); !slices.Equal(ms, []string{client.MethodWebhookRegistered,
		client.MethodPaymentIncoming}) {
		t.Fatalf("the changed webhook got %v", ms)
	}
	if changed.tries() != 4 {
		t.Fatalf("%d attempts at the changed webhook, want 2 refused + 2", changed.tries())
	}
	if ms := old.methods(); !slices.Equal(ms, []string{client.MethodWebhookRegistered}) {
		t.Fatalf("the old URL got %v", ms)
	}
	// Setting it again unchanged sends nothing.
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("phone", changed.url()), &res)
	e.settle()
	if !res.NoChange || changed.count(client.MethodWebhookRegistered) != 1 {
		t.Fatalf("no_change %v, %d webhook_registered", res.NoChange,
			changed.count(client.MethodWebhookRegistered))
	}
}

// Notifications go to every webhook of the receiver.
func TestNotificationsGoToEveryWebhook(t *testing.T) {
	e := newEnv(t)
	a, b := newWallet(e), newWallet(e)
	rc := e.registered(0, a.url()) // the app "default"
	e.stock(rc, 20, 0)
	e.lspsOK(rc.key, client.MethodSetWebhook, setParams("second", b.url()), nil)
	e.run()
	e.hold(0, rc)
	for name, w := range map[string]*wallet{"default": a, "second": b} {
		testkit.Eventually(t, 5*time.Second, "payment_incoming to "+name, func() bool {
			return w.count(client.MethodPaymentIncoming) == 1
		})
		if ms := w.methods(); ms[0] != client.MethodWebhookRegistered {
			t.Fatalf("%s got %v", name, ms)
		}
	}
}

// The cooldown is in the file: a restart does not shorten it. PeerOnline
// (the node connected) resets it.
func TestCooldownSurvivesRestartAndPeerOnline(t *testing.T) {
	e := newEnv(t)
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0)
	e.run()
	e.hold(0, rc)
	testkit.Eventually(t, 5*time.Second, "payment_incoming", func() bool {
		return w.count(client.MethodPaymentIncoming) == 1
	})
	e.hold(1, rc) // owed, within the cooldown
	e.restart()
	e.run()
	e.advance(30 * time.Second)
	e.settle()
	if c := w.count(client.MethodPaymentIncoming); c != 1 {
		t.Fatalf("%d payment_incoming within the cooldown, across a restart", c)
	}
	if err := e.role.PeerOnline(e.ctx, rc.key); err != nil {
		t.Fatal(err)
	}
	e.settle()
	testkit.Eventually(t, 5*time.Second, "payment_incoming after the reset", func() bool {
		return w.count(client.MethodPaymentIncoming) == 2
	})
}

// Any LSPS0 request over BOLT8 means the node is online: its cooldowns
// reset. The same request from a backend over HTTP does not.
func TestLSPSRequestResetsCooldown(t *testing.T) {
	e := newEnv(t)
	w := newWallet(e)
	rc := e.registered(0, w.url())
	e.stock(rc, 20, 0)
	e.run()
	e.hold(0, rc)
	testkit.Eventually(t, 5*time.Second, "payment_incoming", func() bool {
		return w.count(client.MethodPaymentIncoming) == 1
	})
	e.hold(1, rc)
	resp := e.postLSPS0(rc, lspsRequest(t, client.MethodInvoiceStock, nil))
	if !strings.Contains(string(resp), `"result"`) {
		t.Fatalf("over HTTP: %s", resp)
	}
	e.settle()
	if c := w.count(client.MethodPaymentIncoming); c != 1 {
		t.Fatalf("an HTTP request reset the cooldown: %d", c)
	}
	e.lspsOK(rc.key, client.MethodListWebhooks, nil, nil)
	e.settle()
	testkit.Eventually(t, 5*time.Second, "payment_incoming after a request over BOLT8", func() bool {
		return w.count(client.MethodPaymentIncoming) == 2
	})
}

// The HTTP registration's webhook_url is set_webhook of the app "default":
// the same store, the same checks, the same limit.
func TestRegistrationWebhookIsDefaultApp(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Options.Webhook.Max = 2 })
	rc := e.registered(0, "https://wallet.example/hook")
	var list client.ListWebhooksResult
	e.lspsOK(rc.key, client.MethodListWebhooks, nil, &list)
	if !slices.Equal(list.AppNames, []string{holdstore.DefaultAppName}) {
		t.Fatalf("listed %v", list.AppNames)
	}
	var set client.SetWebhookResult
	e.lspsOK(rc.key, client.MethodSetWebhook,
		setParams(holdstore.DefaultAppName, "https://wallet.example/hook"), &set)
	if !set.NoChange {
		t.Fatal("the registration's webhook is not the app default's")
	}
	// Registering again without a webhook_url leaves them be; with one,
	// replaces default's.
	if _, err := rc.client.Register(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.client.Register(e.ctx, "https://wallet.example/2"); err != nil {
		t.Fatal(err)
	}
	hooks, _ := e.store.Webhooks(e.ctx, vertex(rc.key))
	if len(hooks) != 1 || hooks[0].URL != "https://wallet.example/2" {
		t.Fatalf("webhooks %+v", hooks[0])
	}
	// At the maximum, a registration that would add "default" is refused
	// and changes nothing; the token stays.
	other := e.registered(1, "")
	for _, app := range []string{"a", "b"} {
		e.lspsOK(other.key, client.MethodSetWebhook, setParams(app, "https://x.example/"), nil)
	}
	token := other.client.Token()
	e.unchanged("a registration over the limit", func() {
		_, err := other.client.Register(e.ctx, "https://x.example/default")
		wantCode(t, "over the limit", err, client.CodeConflict)
	})
	if other.client.Token() != token {
		t.Fatal("the refused registration replaced the token")
	}
	_, err := rc.client.Register(e.ctx, "http://wallet.example/plain")
	wantCode(t, "plain http", err, client.CodeInvalidRequest)
}
