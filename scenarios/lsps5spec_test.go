package scenarios

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/tv42/zbase32"
)

// specExampleHex is 55:371-383's hex dump of the message signed for
// timestamp 2023-05-04T10:52:58.395Z and the body below.
const specExampleHex = "4c535053353a20444f204e4f54205349" +
	"474e2054484953204d45535341474520" +
	"4d414e55414c4c593a204c53503a2041" +
	"7420323032332d30352d30345431303a" +
	"35323a35382e3339355a2049206e6f74" +
	"696679207b226a736f6e727063223a22" +
	"322e30222c226d6574686f64223a226c" +
	"737073352e676f6f64627965222c2270" +
	"6172616d73223a7b7d7d"

// webhookVectorSig is docs/protocol.md's: the secret key 1's ln_signature
// over the spec's example message.
const webhookVectorSig = "d98gq64fc1fokenqse6xq3dsrd1dkspx9cr46fm83ncxcqjbobxmh7r9hapsqmo651jrnfc6mxs7nqhw5844jn1136ueufofnxwu7wyd"

const (
	specExampleTS   = "2023-05-04T10:52:58.395Z"
	specExampleBody = `{"jsonrpc":"2.0","method":"lsps5.goodbye","params":{}}`
)

// signSpec makes an ln_signature the way 50:952-998 says, with key.
func signSpec(key *btcec.PrivateKey, msg string) string {
	first := sha256.Sum256([]byte("Lightning Signed Message:" + msg))
	digest := sha256.Sum256(first[:])
	return zbase32.EncodeToString(ecdsa.SignCompact(key, digest[:], true))
}

// TestSpecWebhookValidator checks the scenarios' bLIP-55 validator against
// the spec's own example: it must accept exactly what the spec signs, and
// refuse anything else, or the regtest proof proves nothing.
func TestSpecWebhookValidator(t *testing.T) {
	want, err := hex.DecodeString(specExampleHex)
	if err != nil {
		t.Fatal(err)
	}
	msg := "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " +
		specExampleTS + " I notify " + specExampleBody
	if len(msg) != 138 || msg != string(want) {
		t.Fatalf("message %d bytes %q, spec's hexdump %q", len(msg), msg, want)
	}

	var one [32]byte
	one[31] = 1
	lsp, _ := btcec.PrivKeyFromBytes(one[:])
	other, _ := btcec.NewPrivateKey()
	at, _ := time.Parse(time.RFC3339, "2023-05-04T10:53:00Z")
	headers := func(ts, sig string) http.Header {
		h := http.Header{}
		h.Set("x-lsps5-timestamp", ts)
		h.Set("x-lsps5-signature", sig)
		return h
	}
	key := lsp.PubKey().SerializeCompressed()
	good := signSpec(lsp, msg)
	// docs/protocol.md's vector, made by asynclsp's signer: the spec's
	// recipe written here independently signs the same 65 bytes.
	if good != webhookVectorSig {
		t.Fatalf("key 1 over the spec's example: %s, docs say %s", good, webhookVectorSig)
	}

	n, _, err := ValidateSpecWebhook(key, "POST", headers(specExampleTS, good),
		[]byte(specExampleBody), at)
	if err != nil || n.Method != "lsps5.goodbye" {
		t.Fatalf("the spec's example: %v, %+v", err, n)
	}

	for name, tc := range map[string]struct {
		method, ts, sig, body string
		now                   time.Time
	}{
		"GET":            {"GET", specExampleTS, good, specExampleBody, at},
		"another key":    {"POST", specExampleTS, signSpec(other, msg), specExampleBody, at},
		"body changed":   {"POST", specExampleTS, good, `{"jsonrpc":"2.0","method":"lsps5.goodbye","params":{} }`, at},
		"timestamp +1ms": {"POST", "2023-05-04T10:52:58.396Z", good, specExampleBody, at},
		"LDK's rfc3339":  {"POST", "2023-05-04T10:52:58.395+00:00", good, specExampleBody, at},
		"stale":          {"POST", specExampleTS, good, specExampleBody, at.Add(time.Hour)},
		"hex signature":  {"POST", specExampleTS, hex.EncodeToString([]byte(good)), specExampleBody, at},
		"not a notification": {"POST", specExampleTS,
			signSpec(lsp, "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At "+specExampleTS+` I notify {"jsonrpc":"2.0","id":"1","method":"lsps5.goodbye","params":{}}`),
			`{"jsonrpc":"2.0","id":"1","method":"lsps5.goodbye","params":{}}`, at},
	} {
		_, _, err := ValidateSpecWebhook(key, tc.method, headers(tc.ts, tc.sig),
			[]byte(tc.body), tc.now)
		if !errors.Is(err, ErrSpecWebhook) {
			t.Errorf("%s: accepted (err %v)", name, err)
		}
	}
}
