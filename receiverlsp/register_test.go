package receiverlsp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

func TestRegisterAndRotateToken(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	first := rc.client.Token()
	if _, err := rc.client.Counts(e.ctx); err != nil {
		t.Fatalf("counts with a fresh token: %v", err)
	}
	// Registering again rotates the token: the old one stops working.
	reg, err := rc.client.Register(e.ctx, "https://wallet.example/hook")
	if err != nil || reg.Token == first || reg.WebhookURL != "https://wallet.example/hook" {
		t.Fatalf("re-register: %+v, %v", reg, err)
	}
	old, _ := client.New(client.Config{BaseURL: e.api.URL, NodeKey: rc.key,
		Signer: rc.signer, Token: first})
	_, err = old.Counts(e.ctx)
	wantCode(t, "old token", err, client.CodeUnauthorized)
	if _, err := rc.client.Counts(e.ctx); err != nil {
		t.Fatalf("counts with the new token: %v", err)
	}
	// Tokens of the right shape that are not a receiver's.
	for name, tok := range map[string]string{
		"unknown receiver": e.receiver(5).key.String() + "." + hex.EncodeToString(make([]byte, 32)),
		"wrong secret":     rc.key.String() + "." + hex.EncodeToString(make([]byte, 32)),
		"no dot":           "abc",
	} {
		c, _ := client.New(client.Config{BaseURL: e.api.URL, NodeKey: rc.key,
			Signer: rc.signer, Token: tok})
		_, err := c.Mailbox(e.ctx)
		wantCode(t, name, err, client.CodeUnauthorized)
	}
}

// post sends a raw JSON body and returns the status and error code.
func post(t *testing.T, e *env, path string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(e.api.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er client.ErrorResponse
	json.NewDecoder(resp.Body).Decode(&er)
	return resp.StatusCode, er.Error.Code
}

// challenge asks the LSP for a challenge for key.
func challenge(t *testing.T, e *env, key onionmsg.NodeKey) []byte {
	t.Helper()
	b, _ := json.Marshal(client.ChallengeRequest{NodeKey: key})
	resp, err := http.Post(e.api.URL+"/v1/register/challenge", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cr client.ChallengeResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(cr.Challenge)
	c, err := client.ParseChallenge(raw)
	if err != nil || c.LSPKey != e.lsp || c.ReceiverKey != key ||
		!c.ExpiresAt.Equal(testStart.Add(5*time.Minute)) {
		t.Fatalf("challenge %+v, %v", c, err)
	}
	return raw
}

func sign(t *testing.T, s onionmsg.Signer, msg []byte) string {
	t.Helper()
	sig, err := s.SignTagged(t.Context(), []byte(onionmsg.TagRegister), msg)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sig[:])
}

// Every forged, misdirected, stale or replayed registration is refused with
// a clear code and changes nothing.
func TestForgedRegistrationsChangeNothing(t *testing.T) {
	e := newEnv(t)
	rc, mallory := e.receiver(0), e.receiver(1)
	good := challenge(t, e, rc.key)

	tampered := bytes.Clone(good)
	tampered[70] ^= 1 // a nonce the LSP did not issue
	forMallory := challenge(t, e, mallory.key)

	cases := []struct {
		name string
		req  client.RegisterRequest
		code string
	}{
		{"signed by another key", client.RegisterRequest{NodeKey: rc.key,
			Challenge: hex.EncodeToString(good), Signature: sign(t, mallory.signer, good)},
			client.CodeInvalidRequest},
		{"signed with another tag", client.RegisterRequest{NodeKey: rc.key,
			Challenge: hex.EncodeToString(good), Signature: func() string {
				sig, _ := rc.signer.SignTagged(e.ctx, []byte(onionmsg.TagRelease), good)
				return hex.EncodeToString(sig[:])
			}()}, client.CodeInvalidRequest},
		{"tampered challenge, resigned", client.RegisterRequest{NodeKey: rc.key,
			Challenge: hex.EncodeToString(tampered), Signature: sign(t, rc.signer, tampered)},
			client.CodeInvalidRequest},
		{"challenge for another receiver", client.RegisterRequest{NodeKey: rc.key,
			Challenge: hex.EncodeToString(forMallory), Signature: sign(t, rc.signer, forMallory)},
			client.CodeInvalidRequest},
		{"plain-http webhook", client.RegisterRequest{NodeKey: rc.key,
			Challenge: hex.EncodeToString(good), Signature: sign(t, rc.signer, good),
			WebhookURL: "http://wallet.example/hook"}, client.CodeInvalidRequest},
		{"garbage challenge", client.RegisterRequest{NodeKey: rc.key,
			Challenge: "zz", Signature: sign(t, rc.signer, good)}, client.CodeInvalidRequest},
	}
	for _, c := range cases {
		e.unchanged(c.name, func() {
			status, code := post(t, e, "/v1/register", c.req)
			if code != c.code || status != http.StatusBadRequest {
				t.Fatalf("%s: %d %s, want 400 %s", c.name, status, code, c.code)
			}
		})
	}
	e.unchanged("unknown fields", func() {
		status, code := post(t, e, "/v1/register", map[string]any{"node_key": rc.key, "admin": true})
		if status != http.StatusBadRequest || code != client.CodeInvalidRequest {
			t.Fatalf("unknown field: %d %s", status, code)
		}
	})

	// The genuine answer registers once; replaying it is refused.
	genuine := client.RegisterRequest{NodeKey: rc.key,
		Challenge: hex.EncodeToString(good), Signature: sign(t, rc.signer, good)}
	if status, code := post(t, e, "/v1/register", genuine); status != http.StatusOK {
		t.Fatalf("genuine registration: %d %s", status, code)
	}
	e.unchanged("replay", func() {
		if status, code := post(t, e, "/v1/register", genuine); status != http.StatusConflict ||
			code != client.CodeConflict {
			t.Fatalf("replay: %d %s", status, code)
		}
	})

	// A challenge answered too late is refused.
	late := challenge(t, e, mallory.key)
	e.advance(5*time.Minute + time.Second)
	e.unchanged("expired challenge", func() {
		status, code := post(t, e, "/v1/register", client.RegisterRequest{NodeKey: mallory.key,
			Challenge: hex.EncodeToString(late), Signature: sign(t, mallory.signer, late)})
		if status != http.StatusBadRequest || code != client.CodeInvalidRequest {
			t.Fatalf("expired: %d %s", status, code)
		}
	})
}

// A wallet refuses to sign a challenge for another LSP.
func TestClientChecksTheChallenge(t *testing.T) {
	e := newEnv(t)
	_, otherLSP := testkit.Key(2)
	rc := e.receiver(0)
	c, _ := client.New(client.Config{BaseURL: e.api.URL, NodeKey: rc.key,
		Signer: rc.signer, LSPKey: otherLSP, Clock: e.clock})
	e.unchanged("a challenge for another LSP", func() {
		if _, err := c.Register(e.ctx, ""); err == nil {
			t.Fatal("registered with a challenge of another LSP")
		}
	})
}

func TestWebhookURLs(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://wallet.example/hook":     true,
		"http://127.0.0.1:8080/hook":      true,
		"http://[::1]/hook":               true,
		"http://localhost:9/x":            true,
		"http://wallet.example/hook":      false,
		"http://10.0.0.1/hook":            false,
		"ftp://wallet.example/":           false,
		"https://user:pw@wallet.example/": false,
		"/relative":                       false,
		"https://":                        false,
	} {
		if err := validateWebhookURL(url); (err == nil) != ok {
			t.Errorf("%q: err = %v", url, err)
		}
	}
}

// lnReceiver is receiver i as a wallet that can only signmessage (CLN,
// LDK Node, the Breez SDK): its client has a MessageSigner and no BIP-340
// Signer, so it registers and releases with ln_signatures.
func (e *env) lnReceiver(i int) *receiver {
	e.t.Helper()
	rc := e.receiver(i)
	var err error
	rc.client, err = client.New(client.Config{
		BaseURL: e.api.URL, NodeKey: rc.key, MessageSigner: rc.signer,
		LSPKey: e.lsp, Clock: e.clock,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return rc
}

// challengeResponse asks the LSP for a challenge for key, as a wallet that
// signs the text it is handed would.
func challengeResponse(t *testing.T, e *env, key onionmsg.NodeKey) client.ChallengeResponse {
	t.Helper()
	b, _ := json.Marshal(client.ChallengeRequest{NodeKey: key})
	resp, err := http.Post(e.api.URL+"/v1/register/challenge", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cr client.ChallengeResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

// signLN returns s's ln_signature of msg.
func signLN(t *testing.T, s onionmsg.MessageSigner, msg []byte) string {
	t.Helper()
	sig, err := s.SignMessage(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// A wallet that can only signmessage registers with an ln_signature: the
// client signs the challenge's text, and a wallet that signs the
// ln_message it is handed registers as well.
func TestRegisterWithLNSignature(t *testing.T) {
	e := newEnv(t)
	rc := e.lnReceiver(0)
	if _, err := rc.client.Register(e.ctx, ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := rc.client.Counts(e.ctx); err != nil {
		t.Fatalf("counts with the token: %v", err)
	}

	// The ln_message is the prefix and the challenge in lowercase hex,
	// what Challenge.LNMessage makes.
	other := e.receiver(1)
	cr := challengeResponse(t, e, other.key)
	raw, _ := hex.DecodeString(cr.Challenge)
	c, err := client.ParseChallenge(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := onionmsg.RegisterMessagePrefix + hex.EncodeToString(raw)
	if cr.LNMessage != want || string(c.LNMessage()) != want {
		t.Fatalf("ln_message %q\nwant %q", cr.LNMessage, want)
	}
	req := client.RegisterRequest{NodeKey: other.key, Challenge: cr.Challenge,
		Signature: signLN(t, other.signer, []byte(cr.LNMessage))}
	if status, code := post(t, e, "/v1/register", req); status != http.StatusOK {
		t.Fatalf("registration signing ln_message: %d %s", status, code)
	}
	e.unchanged("replay", func() {
		if status, code := post(t, e, "/v1/register", req); status != http.StatusConflict ||
			code != client.CodeConflict {
			t.Fatalf("replay: %d %s", status, code)
		}
	})
}

// Every forged or malformed ln_signature registration is refused with
// invalid_request and changes nothing.
func TestForgedLNRegistrationsChangeNothing(t *testing.T) {
	e := newEnv(t)
	rc, mallory := e.receiver(0), e.receiver(1)
	good := challenge(t, e, rc.key)
	text := onionmsg.RegisterLNMessage(good)
	genuine := signLN(t, rc.signer, text)
	mangled := []byte(genuine)
	if mangled[40] = 'y'; genuine[40] == 'y' {
		mangled[40] = 'b'
	}
	releaseText := append([]byte(onionmsg.ReleaseMessagePrefix), text[len(onionmsg.RegisterMessagePrefix):]...)

	for name, sig := range map[string]string{
		"signed by another key":        signLN(t, mallory.signer, text),
		"over the bytes, not the text": signLN(t, rc.signer, good),
		"under the release prefix":     signLN(t, rc.signer, releaseText),
		"one character changed":        string(mangled),
		"uppercase":                    strings.ToUpper(genuine),
		"not zbase32":                  strings.Repeat("l", onionmsg.LNSignatureLen),
		"one character short":          genuine[1:],
		"one character more":           genuine + "y",
		"hex of the ln_signature":      hex.EncodeToString([]byte(genuine))[:128],
	} {
		e.unchanged(name, func() {
			status, code := post(t, e, "/v1/register", client.RegisterRequest{
				NodeKey: rc.key, Challenge: hex.EncodeToString(good), Signature: sig})
			if status != http.StatusBadRequest || code != client.CodeInvalidRequest {
				t.Fatalf("%s: %d %s, want 400 %s", name, status, code, client.CodeInvalidRequest)
			}
		})
	}

	// The genuine one registers; replaying it in the other scheme (the
	// BIP-340 signature of the same challenge) is a replay all the same.
	status, code := post(t, e, "/v1/register", client.RegisterRequest{
		NodeKey: rc.key, Challenge: hex.EncodeToString(good), Signature: genuine})
	if status != http.StatusOK {
		t.Fatalf("genuine: %d %s", status, code)
	}
	e.unchanged("replay in the other scheme", func() {
		status, code := post(t, e, "/v1/register", client.RegisterRequest{
			NodeKey: rc.key, Challenge: hex.EncodeToString(good), Signature: sign(t, rc.signer, good)})
		if status != http.StatusConflict || code != client.CodeConflict {
			t.Fatalf("replay: %d %s", status, code)
		}
	})
}
