package scenarios

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/tv42/zbase32"
)

// This file is a webhook validator written from bLIP-55 and bLIP-50 alone,
// as a wallet team would write it: it shares no code with asynclsp's signer
// or its receiverclient.VerifyWebhook, so a webhook it accepts is one any
// spec-following client accepts.

// ErrSpecWebhook: a webhook bLIP-55 says to refuse.
var ErrSpecWebhook = errors.New("webhook refused by the bLIP-55 validator")

// specTimestamp is 55:351-352's `YYYY-MM-DDThh:mm:ss.uuuZ`.
var specTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// specMaxSkew is how far from now a timestamp may be (LDK's ±10 minutes).
const specMaxSkew = 10 * time.Minute

// SpecNotification is a webhook body as 55:310-340 defines it.
type SpecNotification struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// ValidateSpecWebhook checks one webhook POST against bLIP-55: the two
// headers in their formats (55:390-400), the body a JSON-RPC 2.0
// notification object with by-name params (55:405-410), and the
// x-lsps5-signature an ln_signature (50:952-998) by lspKey (33 bytes,
// compressed) over "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At
// ${timestamp} I notify ${body}" (55:347-357). It returns the notification
// and the 65 signature bytes (for a replay check on what they sign, not
// on their encoding).
func ValidateSpecWebhook(lspKey []byte, method string, h http.Header,
	body []byte, now time.Time) (*SpecNotification, []byte, error) {

	if method != http.MethodPost {
		return nil, nil, fmt.Errorf("%w: %s, not POST", ErrSpecWebhook, method)
	}
	ts := h.Get("x-lsps5-timestamp")
	if !specTimestamp.MatchString(ts) {
		return nil, nil, fmt.Errorf("%w: x-lsps5-timestamp %q is not "+
			"YYYY-MM-DDThh:mm:ss.uuuZ", ErrSpecWebhook, ts)
	}
	at, err := time.Parse("2006-01-02T15:04:05.000Z", ts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: timestamp %q: %v", ErrSpecWebhook, ts, err)
	}
	if d := now.Sub(at); d > specMaxSkew || d < -specMaxSkew {
		return nil, nil, fmt.Errorf("%w: timestamp %s is %s from now",
			ErrSpecWebhook, ts, d)
	}
	sig, err := zbase32.DecodeString(h.Get("x-lsps5-signature"))
	if err != nil || len(sig) != 65 {
		return nil, nil, fmt.Errorf("%w: x-lsps5-signature is not the "+
			"zbase32 of 65 bytes", ErrSpecWebhook)
	}

	// 50:952-998: SHA256(SHA256("Lightning Signed Message:" + msg)).
	msg := "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " + ts +
		" I notify " + string(body)
	first := sha256.Sum256([]byte("Lightning Signed Message:" + msg))
	digest := sha256.Sum256(first[:])
	pub, compressed, err := ecdsa.RecoverCompact(sig, digest[:])
	if err != nil || !compressed ||
		!bytes.Equal(pub.SerializeCompressed(), lspKey) {

		return nil, nil, fmt.Errorf("%w: x-lsps5-signature is not the "+
			"LSP's over this timestamp and body", ErrSpecWebhook)
	}

	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, nil, fmt.Errorf("%w: body is not a JSON object", ErrSpecWebhook)
	}
	var n SpecNotification
	_, hasID := obj["id"]
	if err := json.Unmarshal(body, &n); err != nil || hasID ||
		n.JSONRPC != "2.0" || n.Method == "" ||
		!bytes.HasPrefix(bytes.TrimSpace(n.Params), []byte("{")) {

		return nil, nil, fmt.Errorf("%w: body is not a JSON-RPC 2.0 "+
			"notification with by-name params", ErrSpecWebhook)
	}

	return &n, sig, nil
}
