package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
	"github.com/asynclsp/asynclsp/onionmsg"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpora in testdata/fuzz")

// FuzzParseChallenge: a challenge comes from the LSP over the network and
// is signed by the receiver's node key, so its parser must never panic, must
// refuse with ErrBadChallenge, and must accept only bytes it re-encodes
// unchanged. The seeds, in testdata/fuzz/FuzzParseChallenge, are
// TestFuzzSeeds'.
func FuzzParseChallenge(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("refused with an unnamed error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("accepted bytes it does not re-encode: %x -> %x", b, c.Bytes())
		}
	})
}

// webhookNow is when FuzzVerifyWebhook's wallet checks its webhooks.
var webhookNow = time.Date(2023, 5, 4, 10, 53, 0, 0, time.UTC)

// FuzzVerifyWebhook: a webhook's headers and body come from the network
// (anyone can POST to a wallet's webhook), so VerifyWebhook and a
// Validator must never panic and must refuse with ErrBadWebhook. With sign
// set, the LSP (testkit key 1) signs the timestamp and body as they are,
// and signature is not used. What is accepted must be signed by the LSP
// over the timestamp and body as sent (and by no other key), timestamped
// within MaxWebhookSkew of now, and a JSON-RPC 2.0 notification with a
// method and object params; what the LSP signed so must be accepted. A new
// Validator takes exactly what VerifyWebhook does, and then refuses it
// again, also under its other, malleated signature. The seeds, in
// testdata/fuzz/FuzzVerifyWebhook, are TestFuzzSeeds'.
func FuzzVerifyWebhook(f *testing.F) {
	f.Fuzz(func(t *testing.T, timestamp, signature string, body []byte, sign bool) {
		checkWebhook(t, timestamp, signature, body, sign)
	})
}

// checkWebhook verifies one webhook as FuzzVerifyWebhook does, checks what
// it promises, and returns whether it was accepted.
func checkWebhook(t testing.TB, timestamp, signature string, body []byte, sign bool) bool {
	t.Helper()
	priv, lsp := testkit.Key(1)
	_, other := testkit.Key(2)
	if sign {
		var err error
		signature, err = onionmsg.NewPrivKeySigner(priv).SignMessage(context.Background(),
			WebhookMessage(timestamp, body))
		if err != nil {
			t.Fatal(err)
		}
	}
	h := http.Header{}
	h.Set("x-lsps5-timestamp", timestamp)
	h.Set("x-lsps5-signature", signature)
	n, err := VerifyWebhook(lsp, h, body, webhookNow)
	v := NewValidator(lsp)
	vn, verr := v.Validate(h, body, webhookNow)
	if (err == nil) != (verr == nil) || err == nil && n.Method != vn.Method {
		t.Fatalf("VerifyWebhook %v, a new Validator %v", err, verr)
	}
	want := sign && fresh(timestamp) && isNotification(body)
	if err != nil {
		if !errors.Is(err, ErrBadWebhook) || !errors.Is(verr, ErrBadWebhook) {
			t.Fatalf("refused with an unnamed error: %v, %v", err, verr)
		}
		if want {
			t.Fatalf("refused a fresh notification the LSP signed: %v", err)
		}
		return false
	}
	if onionmsg.VerifyLNSignature(WebhookMessage(timestamp, body), signature, lsp) != nil ||
		!fresh(timestamp) || !isNotification(body) {
		t.Fatalf("accepted %q signed %q at %q", body, signature, timestamp)
	}
	if _, err := VerifyWebhook(other, h, body, webhookNow); err == nil {
		t.Fatal("accepted under another LSP's key too")
	}
	var sent Notification
	if json.Unmarshal(body, &sent) != nil || sent.Method != n.Method ||
		!bytes.Equal(sent.Params, n.Params) {
		t.Fatalf("accepted %q as %+v", body, n)
	}
	if _, err := v.Validate(h, body, webhookNow); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("a replay accepted: %v", err)
	}
	m := h.Clone()
	m.Set("x-lsps5-signature", malleate(t, signature))
	if _, err := v.Validate(m, body, webhookNow); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("a replay under the malleated signature accepted: %v", err)
	}
	return true
}

// fresh reports whether timestamp is an RFC 3339 time within
// MaxWebhookSkew of webhookNow.
func fresh(timestamp string) bool {
	at, err := time.Parse(time.RFC3339, timestamp)
	if err != nil {
		return false
	}
	d := webhookNow.Sub(at)
	return d <= MaxWebhookSkew && d >= -MaxWebhookSkew
}

// isNotification reports whether body is a JSON-RPC 2.0 notification with
// a method and params that are an object, as bLIP-55's webhooks are.
func isNotification(body []byte) bool {
	var n struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params"`
	}
	var params map[string]json.RawMessage
	return json.Unmarshal(body, &n) == nil && n.JSONRPC == "2.0" && n.Method != "" &&
		json.Unmarshal(n.Params, &params) == nil && params != nil
}

// The seeds of FuzzParseChallenge and FuzzVerifyWebhook are current
// (-update rewrites them), and the webhooks are accepted or refused as
// their names say.
func TestFuzzSeeds(t *testing.T) {
	lsp, _ := onionmsg.ParseNodeKey("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	recv, _ := onionmsg.ParseNodeKey("03" + "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
	good := Challenge{LSPKey: lsp, ReceiverKey: recv, Nonce: [32]byte{7},
		ExpiresAt: time.Unix(2_000_000_000, 0).UTC(), MAC: [32]byte{9}}
	fuzzcorpus.Check(t, "FuzzParseChallenge", []fuzzcorpus.Seed{
		{Name: "good", Args: []any{good.Bytes()}},
		{Name: "empty", Args: []any{[]byte{}}},
		{Name: "all-ff", Args: []any{bytes.Repeat([]byte{0xff}, ChallengeLen)}},
		{Name: "short", Args: []any{good.Bytes()[:ChallengeLen-1]}},
		{Name: "long", Args: []any{append(good.Bytes(), 0)}},
		{Name: "zero-keys", Args: []any{make([]byte, ChallengeLen)}},
	}, *update)

	const spec = "2023-05-04T10:52:58.395Z"
	incoming := []byte(`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`)
	sig := func(ts string, body []byte) string {
		_, h := signedHeaders(t, ts, body)
		return h.Get("x-lsps5-signature")
	}
	// Those named signed and malleated are accepted; the rest refused.
	seed := func(name, ts, signature string, body []byte, sign bool) fuzzcorpus.Seed {
		accepted := checkWebhook(t, ts, signature, body, sign)
		if want := strings.HasPrefix(name, "signed") || name == "malleated"; accepted != want {
			t.Errorf("seed %s: accepted %v", name, accepted)
		}
		return fuzzcorpus.Seed{Name: name, Args: []any{ts, signature, body, sign}}
	}
	fuzzcorpus.Check(t, "FuzzVerifyWebhook", []fuzzcorpus.Seed{
		seed("signed", spec, sig(spec, incoming), incoming, false),
		seed("signed-ldk-form", "2023-05-04T10:52:58+00:00", "", []byte(`{"jsonrpc":"2.0","method":"lsps5.expiry_soon","params":{"timeout":144}}`), true),
		seed("signed-nanoseconds", "2023-05-04T10:52:58.395123456+00:00", "",
			[]byte(`{"jsonrpc":"2.0","method":"asynclsp.invoices_low","params":{"available":1,"threshold":5}}`), true),
		seed("signed-goodbye", spec, "", []byte(`{"jsonrpc":"2.0","method":"lsps5.goodbye","params":{}}`), true),
		seed("malleated", spec, malleate(t, sig(spec, incoming)), incoming, false),
		seed("other-body", spec, sig(spec, incoming), []byte(`{"jsonrpc":"2.0","method":"lsps5.webhook_registered","params":{}}`), false),
		seed("other-timestamp", "2023-05-04T10:52:58.396Z", sig(spec, incoming), incoming, false),
		seed("stale", "2023-05-04T10:42:59.000Z", "", incoming, true),
		seed("future", "2023-05-04T11:03:01.000Z", "", incoming, true),
		seed("not-rfc3339", "2023-05-04 10:52:58", "", incoming, true),
		seed("no-signature", spec, "", incoming, false),
		seed("garbage-signature", spec, "rbcs4tff9fbg3dcz3ti9k7eh3gdbyyad3f8fgcqrr", incoming, false),
		seed("no-params", spec, "", []byte(`{"jsonrpc":"2.0","method":"lsps5.payment_incoming"}`), true),
		seed("array-params", spec, "", []byte(`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":[]}`), true),
		seed("jsonrpc-1", spec, "", []byte(`{"jsonrpc":"1.0","method":"lsps5.payment_incoming","params":{}}`), true),
		seed("not-json", spec, "", []byte(`{"jsonrpc":`), true),
	}, *update)
}
