package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// permEnv is a server loaded from RenderServerConfig with the provisioner
// and two LSPs, A and B, each with its own NKey; C is an LSP the server
// does not know. The streams of A and B are provisioned.
type permEnv struct {
	url              string
	keyA, keyB, keyC NodeKey
	seedA            string
	a, b             *Conn
}

func newPermEnv(t *testing.T) *permEnv {
	t.Helper()
	provPub, provSeed := newUser(t)
	aPub, aSeed := newUser(t)
	bPub, bSeed := newUser(t)
	e := &permEnv{keyA: testKey(1), keyB: testKey(2), keyC: testKey(3), seedA: aSeed}
	conf, err := RenderServerConfig(ServerConfigParams{
		ServerName:      "permissions-test",
		Listen:          "127.0.0.1:4222", // the test moves it to a random port
		StoreDir:        t.TempDir(),
		ProvisionerNKey: provPub,
		Members: []Member{
			{Operator: "A", NodeKey: e.keyA, NKey: aPub},
			{Operator: "B", NodeKey: e.keyB, NKey: bPub},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := startFromConfig(t, conf)
	e.url = srv.ClientURL()

	prov, err := ConnectProvisioner(testCtx(t), ClientConfig{URLs: []string{e.url}, NKeySeedFile: provSeed, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("provisioner: %v", err)
	}
	defer func() { _ = prov.Close() }()
	for _, k := range []NodeKey{e.keyA, e.keyB} {
		if err := prov.EnsureStream(testCtx(t), k, StreamConfig{}); err != nil {
			t.Fatalf("provision %s: %v", k, err)
		}
	}
	e.a = connectTest(t, []string{e.url}, e.keyA, func(c *ClientConfig) { c.NKeySeedFile = aSeed })
	e.b = connectTest(t, []string{e.url}, e.keyB, func(c *ClientConfig) { c.NKeySeedFile = bSeed })
	return e
}

// rogue connects with A's credentials but arbitrary client code: what an
// operator could do with its own NKey. It returns the connection and the
// asynchronous errors the server sends it.
func (e *permEnv) rogue(t *testing.T) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	auth, err := nats.NkeyOptionFromSeed(e.seedA)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.url, auth,
		nats.CustomInboxPrefix(inboxPrefix(e.keyA)),
		nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// expectViolation waits for the server's permissions violation for op
// ("Publish" or "Subscription") on subject.
func expectViolation(t *testing.T, errs <-chan error, op, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s to %q", op, subject)
		}
	}
}

// streamMsgs is how many messages B's inbound stream holds, read with B's
// own permissions.
func (e *permEnv) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := e.b.js.Stream(testCtx(t), StreamName(e.keyB))
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// TestPermissionsPublishAndRequestAsItself: A publishes to B and asks B,
// with A's own key as the from-key; B receives both and answers.
func TestPermissionsPublishAndRequestAsItself(t *testing.T) {
	e := newPermEnv(t)
	if err := e.a.Publish(testCtx(t), e.keyB, KindHeldHTLCAvailable, testMsgID(1), []byte("held")); err != nil {
		t.Fatalf("A publishes to B as itself: %v", err)
	}
	rec := newRecorder(nil)
	runConsumer(t, e.b, rec.handle)
	rec.waitHandled(t, 5*time.Second, 1)
	if m := rec.deliveriesOf(1)[0]; m.From != e.keyA {
		t.Errorf("B sees from %s, want A %s", m.From, e.keyA)
	}

	serve(t, e.b, KindInvoiceRequest, func(_ context.Context, from NodeKey, _ []byte) ([]byte, error) {
		return []byte("invoice for " + from.String()), nil
	})
	waitServing(t, e.a, e.keyB, KindInvoiceRequest)
	got, err := e.a.Request(testCtx(t), e.keyB, KindInvoiceRequest, []byte("please"))
	if err != nil {
		t.Fatalf("A asks B: %v", err)
	}
	if want := "invoice for " + e.keyA.String(); string(got) != want {
		t.Errorf("answer %q, want %q", got, want)
	}
}

// TestPermissionsCannotSubscribeToOthers: A cannot listen to what is
// addressed to B, nor to everything; it can listen to its own requests.
func TestPermissionsCannotSubscribeToOthers(t *testing.T) {
	e := newPermEnv(t)
	nc, errs := e.rogue(t)
	b, a := e.keyB.String(), e.keyA.String()
	for _, subject := range []string{
		"asynclsp.req." + b + ".*.*",
		"asynclsp.req." + b + "." + a + ".invoice_request",
		"asynclsp.in." + b + ".*.*",
		"_INBOX." + b + ".>",
		"$JS.ACK." + StreamName(e.keyB) + ".>",
		"asynclsp.>",
		">",
	} {
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, "Subscription", subject)
		if _, err := sub.NextMsg(time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("subscription to %q: NextMsg gives %v, want a permissions violation", subject, err)
		}
	}
	own, err := nc.SubscribeSync("asynclsp.req." + a + ".*.*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.NextMsg(200 * time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("A's own request subject: NextMsg gives %v, want a plain timeout", err)
	}
}

// TestPermissionsCannotPublishAsOthers: A cannot put a message in B's
// inbound stream, or send B a request, under C's or B's key.
func TestPermissionsCannotPublishAsOthers(t *testing.T) {
	e := newPermEnv(t)
	var mu sync.Mutex
	var froms []NodeKey
	serve(t, e.b, KindInvoiceRequest, func(_ context.Context, from NodeKey, _ []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		froms = append(froms, from)
		return []byte("ok"), nil
	})
	waitServing(t, e.a, e.keyB, KindInvoiceRequest)

	nc, errs := e.rogue(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, as := range []NodeKey{e.keyC, e.keyB} {
		subject := DurableSubject(e.keyB, as, KindReleaseHeldHTLC)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := js.Publish(ctx, subject, []byte("forged release"))
		cancel()
		if err == nil {
			t.Errorf("publish to %s acknowledged", subject)
		}
		expectViolation(t, errs, "Publish", subject)

		subject = RequestSubject(e.keyB, as, KindInvoiceRequest)
		if _, err := nc.Request(subject, []byte("forged"), 500*time.Millisecond); err == nil {
			t.Errorf("request to %s answered", subject)
		}
		expectViolation(t, errs, "Publish", subject)
	}
	if n := e.streamMsgs(t); n != 0 {
		t.Errorf("B's stream holds %d messages, want 0", n)
	}
	// A's own requests still reach B, and B only ever saw A's key.
	if _, err := e.a.Request(testCtx(t), e.keyB, KindInvoiceRequest, []byte("real")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range froms {
		if f != e.keyA {
			t.Errorf("B's handler saw a request from %s", f)
		}
	}
}

// TestPermissionsJetStreamScoped: A cannot create a consumer on B's
// stream, pull from B's consumer, get B's messages, ack for B, or create
// or reshape streams (a stream sourcing B's would copy B's mail).
func TestPermissionsJetStreamScoped(t *testing.T) {
	e := newPermEnv(t)
	if err := e.a.Publish(testCtx(t), e.keyB, KindHeldHTLCAvailable, testMsgID(1), []byte("for B only")); err != nil {
		t.Fatal(err)
	}
	// B's consumer exists, as it would in production.
	if _, err := e.b.js.CreateOrUpdateConsumer(testCtx(t), StreamName(e.keyB), e.b.consumerConfig()); err != nil {
		t.Fatal(err)
	}

	nc, errs := e.rogue(t)
	streamB := StreamName(e.keyB)
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	consumerReq := mustJSON(map[string]any{"stream_name": streamB, "config": map[string]any{
		"durable_name": "evil", "ack_policy": "explicit", "filter_subject": "asynclsp.in." + e.keyB.String() + ".>",
	}})
	sourcing := func(name string) []byte {
		return mustJSON(map[string]any{"name": name, "subjects": []string{"evil.>"}, "sources": []map[string]string{{"name": streamB}}})
	}
	for _, c := range []struct {
		what, subject string
		body          []byte
	}{
		{"create a consumer on B's stream", "$JS.API.CONSUMER.CREATE." + streamB + ".evil", consumerReq},
		{"create a durable the old way", "$JS.API.CONSUMER.DURABLE.CREATE." + streamB + ".evil", consumerReq},
		{"pull from B's consumer", "$JS.API.CONSUMER.MSG.NEXT." + streamB + "." + ConsumerName, mustJSON(map[string]any{"batch": 1})},
		{"get a message of B's", "$JS.API.STREAM.MSG.GET." + streamB, mustJSON(map[string]any{"seq": 1})},
		{"direct-get a message of B's", "$JS.API.DIRECT.GET." + streamB, mustJSON(map[string]any{"seq": 1})},
		{"read B's stream info", "$JS.API.STREAM.INFO." + streamB, nil},
		{"list B's consumers", "$JS.API.CONSUMER.LIST." + streamB, nil},
		{"ack for B", "$JS.ACK." + streamB + "." + ConsumerName + ".1.1.1.0.0", nil},
		{"create a stream sourcing B's", "$JS.API.STREAM.CREATE.evil", sourcing("evil")},
		{"make A's stream source B's", "$JS.API.STREAM.UPDATE." + StreamName(e.keyA), sourcing(StreamName(e.keyA))},
		{"delete B's stream", "$JS.API.STREAM.DELETE." + streamB, nil},
	} {
		t.Run(c.what, func(t *testing.T) {
			if err := nc.PublishRequest(c.subject, nc.NewRespInbox(), c.body); err != nil {
				t.Fatal(err)
			}
			expectViolation(t, errs, "Publish", c.subject)
		})
	}

	// Through the client library too: the call fails.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := js.CreateOrUpdateConsumer(ctx, streamB, jetstream.ConsumerConfig{Durable: "evil2"}); err == nil {
		t.Error("A created a consumer on B's stream")
	}

	// B's mail is intact: no extra consumer, its message never delivered.
	for _, name := range []string{"evil", "evil2"} {
		if _, err := e.b.js.Consumer(testCtx(t), streamB, name); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("consumer %q on B's stream: %v, want not found", name, err)
		}
	}
	rec := newRecorder(nil)
	runConsumer(t, e.b, rec.handle)
	rec.waitHandled(t, 5*time.Second, 1)
	if m := rec.deliveriesOf(1)[0]; m.Delivered != 1 {
		t.Errorf("B's message was delivered %d times: someone else pulled it", m.Delivered)
	}
}

// TestPermissionsLSPCannotProvision: an LSP cannot create or update its
// own stream (only the provisioner can), so it cannot widen its subjects.
func TestPermissionsLSPCannotProvision(t *testing.T) {
	e := newPermEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := e.a.EnsureStream(ctx, StreamConfig{}); err == nil {
		t.Fatal("A updated its own stream")
	}
}
