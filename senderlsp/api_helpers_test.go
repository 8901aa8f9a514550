package senderlsp

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/senderlsp/client"
)

// apiHarness serves bob's API over real HTTP (httptest) on top of the
// harness: a real Manager, SQLite, NATS and a stub receiver LSP.
type apiHarness struct {
	*harness
	api *API
	srv *httptest.Server

	mu sync.Mutex
	// resumes records the Last-Event-ID of every event stream request.
	resumes []string
}

func newAPIHarness(t testing.TB, tune ...func(*Config)) *apiHarness {
	t.Helper()
	a := &apiHarness{harness: newHarness(t, tune...)}
	a.api = a.m.APIHandler(APIConfig{Logger: testkit.Quiet()})
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			a.mu.Lock()
			a.resumes = append(a.resumes, r.Header.Get("Last-Event-ID"))
			a.mu.Unlock()
		}
		a.api.ServeHTTP(w, r)
	}))
	// Cleanups run last first: the API ends its streams, then the server
	// closes, then the harness stops bob.
	t.Cleanup(a.srv.Close)
	t.Cleanup(a.api.Close)
	return a
}

// token issues an API token.
func (a *apiHarness) token(name string, role holdstore.TokenRole) string {
	a.t.Helper()
	tok, _, err := a.store.CreateToken(context.Background(), name, role)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// client is a Go client with a token; its streams reconnect after 10ms.
func (a *apiHarness) client(token string) *client.Client {
	a.t.Helper()
	c, err := client.New(client.Config{URL: a.srv.URL, Token: token,
		ReconnectWait: 10 * time.Millisecond, Logger: testkit.Quiet()})
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// wallet issues a wallet token for name and returns its client.
func (a *apiHarness) wallet(name string) *client.Client {
	return a.client(a.token(name, holdstore.RoleWallet))
}

// payReq is a request to pay dave through carol.
func (a *apiHarness) payReq(amount uint64, key string) client.CreatePaymentRequest {
	return client.CreatePaymentRequest{ReceiverKey: a.dave.String(),
		ReceiverLSP: a.carol.String(), AmountMsat: amount, IdempotencyKey: key}
}

// createVia creates a payment through c. The idempotency key lets Go's
// transport retry the request on a connection the server just closed.
func (a *apiHarness) createVia(c *client.Client, amount uint64) *client.Payment {
	a.t.Helper()
	p, created, err := c.CreatePayment(context.Background(),
		a.payReq(amount, holdstore.NewID().String()))
	if err != nil || !created {
		a.t.Fatalf("create payment: created %v, %v", created, err)
	}
	return p
}

// hold is the stored hold of a payment.
func (a *apiHarness) hold(p *client.Payment) *holdstore.Hold {
	a.t.Helper()
	id, err := holdstore.ParseID(p.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.get(id)
}

// settle takes a payment through HELD and a release to SETTLED.
func (a *apiHarness) settle(p *client.Payment) {
	a.t.Helper()
	h := a.pay(a.hold(p))
	a.relay(a.releaseFor(a.announced(h.ID), a.davePriv))
	a.waitResolved(h.ID)
}

// call makes a raw request and returns the status and the decoded body.
func (a *apiHarness) call(method, path, token, body string, header ...string) (int, map[string]any, http.Header) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		a.t.Fatalf("%s %s: %d, body not JSON: %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, out, resp.Header
}

// errCode is the code of an error body.
func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// sseMsg is one raw server-sent message.
type sseMsg struct {
	id, event, data, comment string
	hasID                    bool
}

// rawStream opens an event stream without the client, to see exactly what
// the server sends. The stream's messages arrive on the returned channel,
// which is closed when the stream ends; it ends with ctx or the test.
func (a *apiHarness) rawStream(ctx context.Context, query, token string, header ...string) (<-chan sseMsg, *http.Response) {
	a.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	a.t.Cleanup(func() { cancel(); wg.Wait() })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.srv.URL+"/v1/events"+query, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, resp
	}
	out := make(chan sseMsg, 1024)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
				m = sseMsg{}
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "":
				m.comment = value
			case "id":
				m.id, m.hasID = value, true
			case "event":
				m.event = value
			case "data":
				m.data = value
			}
		}
	}()
	return out, resp
}

// nextEvent reads raw messages until a transition, or fails at timeout.
func nextEvent(t *testing.T, msgs <-chan sseMsg) (holdstore.Event, sseMsg) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatal("event stream ended")
			}
			if m.event != "transition" {
				continue
			}
			var ev eventJSON
			if err := json.Unmarshal([]byte(m.data), &ev); err != nil {
				t.Fatalf("event data %q: %v", m.data, err)
			}
			id, err := holdstore.ParseID(ev.PaymentID)
			if err != nil {
				t.Fatal(err)
			}
			return holdstore.Event{Seq: ev.Seq, HoldID: id, From: ev.From,
				To: ev.State, Reason: ev.Reason, Final: ev.Final, At: ev.At}, m
		case <-timeout:
			t.Fatal("timed out waiting for an event")
		}
	}
}

// puller reads a client's event iterator one event at a time.
type puller struct {
	t    *testing.T
	next func() (client.Event, error, bool)
}

func pull(t *testing.T, seq iter.Seq2[client.Event, error]) *puller {
	next, stop := iter.Pull2(seq)
	t.Cleanup(stop)
	return &puller{t: t, next: next}
}

func (p *puller) event() client.Event {
	p.t.Helper()
	ev, err, ok := p.next()
	if !ok || err != nil {
		p.t.Fatalf("event stream: ok %v, %v", ok, err)
	}
	return ev
}

// storeEvents is every event in the store after seq, as the given wallet
// (or an admin, for "") sees them.
func (a *apiHarness) storeEvents(after uint64, owner string) []holdstore.Event {
	a.t.Helper()
	evs, err := a.store.Events(context.Background(), after, 0)
	if err != nil {
		a.t.Fatal(err)
	}
	var out []holdstore.Event
	for _, ev := range evs {
		if owner == "" || a.get(ev.HoldID).Owner == owner {
			out = append(out, ev)
		}
	}
	return out
}
