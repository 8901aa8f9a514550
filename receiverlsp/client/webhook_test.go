package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/tv42/zbase32"
)

// bLIP-55's example (55:359-383): the message for the timestamp
// 2023-05-04T10:52:58.395Z and the body of lsps5.goodbye, 138 bytes.
func TestWebhookMessageSpecVector(t *testing.T) {
	const dump = `
00000000: 4c53 5053 353a 2044 4f20 4e4f 5420 5349  LSPS5: DO NOT SI
00000010: 474e 2054 4849 5320 4d45 5353 4147 4520  GN THIS MESSAGE
00000020: 4d41 4e55 414c 4c59 3a20 4c53 503a 2041  MANUALLY: LSP: A
00000030: 7420 3230 3233 2d30 352d 3034 5431 303a  t 2023-05-04T10:
00000040: 3532 3a35 382e 3339 355a 2049 206e 6f74  52:58.395Z I not
00000050: 6966 7920 7b22 6a73 6f6e 7270 6322 3a22  ify {"jsonrpc":"
00000060: 322e 3022 2c22 6d65 7468 6f64 223a 226c  2.0","method":"l
00000070: 7370 7335 2e67 6f6f 6462 7965 222c 2270  sps5.goodbye","p
00000080: 6172 616d 7322 3a7b 7d7d                 arams":{}}`
	var want []byte
	for _, line := range strings.Split(strings.TrimSpace(dump), "\n") {
		groups := strings.Fields(line[10:50])
		b, err := hex.DecodeString(strings.Join(groups, ""))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	ts, err := FormatTimestamp(time.Date(2023, 5, 4, 10, 52, 58, 395_000_000, time.UTC), TimestampSpec)
	if err != nil || ts != "2023-05-04T10:52:58.395Z" {
		t.Fatalf("timestamp %q, %v", ts, err)
	}
	got := WebhookMessage(ts, []byte(`{"jsonrpc":"2.0","method":"lsps5.goodbye","params":{}}`))
	if len(got) != 138 || !bytes.Equal(got, want) {
		t.Fatalf("message of %d bytes:\n%q\nwant\n%q", len(got), got, want)
	}
}

// The two timestamp forms: bLIP-55's, and chrono's to_rfc3339 (AutoSi,
// +00:00) at millisecond precision.
func TestFormatTimestamp(t *testing.T) {
	at := time.Date(2023, 5, 4, 10, 52, 58, 395_678_000, time.FixedZone("x", 3600))
	whole := time.Date(2023, 5, 4, 10, 52, 58, 0, time.UTC)
	for _, c := range []struct {
		at         time.Time
		form, want string
	}{
		{at, TimestampSpec, "2023-05-04T09:52:58.395Z"},
		{whole, TimestampSpec, "2023-05-04T10:52:58.000Z"},
		{at, TimestampLDK, "2023-05-04T09:52:58.395+00:00"},
		{whole, TimestampLDK, "2023-05-04T10:52:58+00:00"},
		{whole.Add(time.Millisecond), TimestampLDK, "2023-05-04T10:52:58.001+00:00"},
	} {
		if got, err := FormatTimestamp(c.at, c.form); err != nil || got != c.want {
			t.Errorf("%v %s: %q, %v; want %q", c.at, c.form, got, err, c.want)
		}
	}
	if _, err := FormatTimestamp(at, "rfc3339"); err == nil {
		t.Fatal("an unknown form formatted")
	}
}

// signedHeaders signs body at ts with key index 1, as an LSP does.
func signedHeaders(t testing.TB, ts string, body []byte) (onionmsg.NodeKey, http.Header) {
	t.Helper()
	priv, lsp := testkit.Key(1)
	sig, err := onionmsg.NewPrivKeySigner(priv).SignMessage(context.Background(),
		WebhookMessage(ts, body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("x-lsps5-timestamp", ts)
	h.Set("x-lsps5-signature", sig)
	return lsp, h
}

// VerifyWebhook takes every body LDK's msgs.rs writes, and the timestamp in
// the spec's form, LDK's at millisecond precision, and LDK's at nanosecond
// precision (what an LDK LSP sends).
func TestVerifyWebhookLDKBodiesAndForms(t *testing.T) {
	now := time.Date(2023, 5, 4, 10, 53, 0, 0, time.UTC)
	bodies := map[string]string{
		`{"jsonrpc":"2.0","method":"lsps5.webhook_registered","params":{}}`:           MethodWebhookRegistered,
		`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`:             MethodPaymentIncoming,
		`{"jsonrpc":"2.0","method":"lsps5.expiry_soon","params":{"timeout":144}}`:     MethodExpirySoon,
		`{"jsonrpc":"2.0","method":"lsps5.liquidity_management_request","params":{}}`: "lsps5.liquidity_management_request",
		`{"jsonrpc":"2.0","method":"lsps5.onion_message_incoming","params":{}}`:       "lsps5.onion_message_incoming",
	}
	for _, ts := range []string{"2023-05-04T10:52:58.395Z", "2023-05-04T10:52:58.395+00:00",
		"2023-05-04T10:52:58+00:00", "2023-05-04T10:52:58.395123456+00:00"} {
		for body, method := range bodies {
			lsp, h := signedHeaders(t, ts, []byte(body))
			n, err := VerifyWebhook(lsp, h, []byte(body), now)
			if err != nil || n.Method != method {
				t.Errorf("%s %s: %+v, %v", ts, body, n, err)
			}
		}
	}
	// Not a notification with object params.
	for _, body := range []string{`{"jsonrpc":"2.0","method":"lsps5.payment_incoming"}`,
		`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":[]}`,
		`{"jsonrpc":"1.0","method":"lsps5.payment_incoming","params":{}}`} {
		lsp, h := signedHeaders(t, "2023-05-04T10:52:58.395Z", []byte(body))
		if _, err := VerifyWebhook(lsp, h, []byte(body), now); !errors.Is(err, ErrBadWebhook) {
			t.Errorf("%s: %v", body, err)
		}
	}
	// A timestamp that is not RFC 3339.
	lsp, h := signedHeaders(t, "2023-05-04 10:52:58", []byte("{}"))
	if _, err := VerifyWebhook(lsp, h, []byte("{}"), now); !errors.Is(err, ErrBadWebhook) {
		t.Errorf("a bad timestamp: %v", err)
	}
}

// malleate returns the other valid ln_signature over the same message:
// s negated, the recovery id's parity flipped.
func malleate(t testing.TB, sig string) string {
	t.Helper()
	raw, err := zbase32.DecodeString(sig)
	if err != nil || len(raw) != 65 {
		t.Fatalf("signature %q: %v", sig, err)
	}
	var s btcec.ModNScalar
	s.SetByteSlice(raw[33:])
	s.Negate()
	out := append([]byte{}, raw...)
	out[0] = 31 + ((raw[0] - 31) ^ 1)
	b := s.Bytes()
	copy(out[33:], b[:])
	return zbase32.EncodeToString(out)
}

// A Validator refuses a webhook it accepted before: the same signature, or
// the same message under the malleated signature (which VerifyWebhook
// alone accepts).
func TestValidatorRefusesReplays(t *testing.T) {
	now := time.Date(2023, 5, 4, 10, 53, 0, 0, time.UTC)
	body := []byte(`{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}`)
	lsp, h := signedHeaders(t, "2023-05-04T10:52:58.395Z", body)
	v := NewValidator(lsp)
	if _, err := v.Validate(h, body, now); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(h, body, now); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("replayed: %v", err)
	}
	m := h.Clone()
	m.Set("x-lsps5-signature", malleate(t, h.Get("x-lsps5-signature")))
	if m.Get("x-lsps5-signature") == h.Get("x-lsps5-signature") {
		t.Fatal("not malleated")
	}
	if _, err := VerifyWebhook(lsp, m, body, now); err != nil {
		t.Fatalf("the malleated signature does not verify: %v", err)
	}
	if _, err := v.Validate(m, body, now); !errors.Is(err, ErrBadWebhook) {
		t.Fatalf("replayed with a malleated signature: %v", err)
	}
	// Another timestamp is another webhook.
	_, h2 := signedHeaders(t, "2023-05-04T10:52:58.396Z", body)
	if _, err := v.Validate(h2, body, now); err != nil {
		t.Fatal(err)
	}
	// Only the last MaxRecentWebhooks are kept.
	for i := range MaxRecentWebhooks {
		ts := time.Date(2023, 5, 4, 10, 52, 59, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
		_, hi := signedHeaders(t, ts.Format(WebhookTimeFormat), body)
		if _, err := v.Validate(hi, body, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Validate(h, body, now); err != nil {
		t.Fatalf("a webhook older than the last %d: %v", MaxRecentWebhooks, err)
	}
}
