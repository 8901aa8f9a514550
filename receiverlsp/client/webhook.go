package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Webhooks: the receiver LSP wakes a receiver with an HTTP POST to the URL
// it registered, in the manner of LSPS5 (bLIP-55). The body is a JSON-RPC
// 2.0 notification; two headers authenticate it:
//
//	x-lsps5-timestamp: 2026-11-21T12:00:00.000Z   (UTC, milliseconds)
//	x-lsps5-signature: <128 hex digits>
//
// The signature is BIP-340 by the LSP's node key over the tagged hash
// (tag WebhookTag) of the UTF-8 bytes of
//
//	LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At ${timestamp} I notify ${body}
//
// where ${body} is the request body exactly as received. LSPS5 itself signs
// this text with lnd's zbase32 signmessage; asynclsp uses the same BIP-340
// tagged signatures as everywhere else instead. VerifyWebhook checks one.

// WebhookTag is the BIP-340 tag of webhook signatures.
const WebhookTag = "asynclsp/webhook/v1"

// The webhook methods.
const (
	// MethodPaymentIncoming: a held payment waits in the mailbox. No
	// params; read the mailbox.
	MethodPaymentIncoming = "lsps5.payment_incoming"

	// MethodExpirySoon: a pending item nears its deadline. Params:
	// ExpirySoonParams.
	MethodExpirySoon = "lsps5.expiry_soon"

	// MethodInvoicesLow: the stock of invoices fell under the threshold.
	// Params: InvoicesLowParams. asynclsp's own method.
	MethodInvoicesLow = "asynclsp.invoices_low"
)

// Notification is a webhook's body.
type Notification struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// ExpirySoonParams are lsps5.expiry_soon's params: the earliest deadline
// height of the pending items about to expire.
type ExpirySoonParams struct {
	Timeout uint32 `json:"timeout"`
}

// InvoicesLowParams are asynclsp.invoices_low's params.
type InvoicesLowParams struct {
	Available int `json:"available"`
	Threshold int `json:"threshold"`
}

// WebhookTimeFormat is the x-lsps5-timestamp layout.
const WebhookTimeFormat = "2006-01-02T15:04:05.000Z"

// MaxWebhookSkew is how far a webhook's timestamp may be from now when a
// wallet checks it (LSPS5's ten minutes).
const MaxWebhookSkew = 10 * time.Minute

// ErrBadWebhook: a webhook that is not signed by the LSP, is too old or
// from the future, or is not a notification.
var ErrBadWebhook = errors.New("bad webhook")

// WebhookMessage returns the bytes a webhook's signature covers.
func WebhookMessage(timestamp string, body []byte) []byte {
	msg := []byte("LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " +
		timestamp + " I notify ")
	return append(msg, body...)
}

// VerifyWebhook checks a webhook's headers and body: signed by the LSP's
// node key, timestamped within MaxWebhookSkew of now, a JSON-RPC 2.0
// notification. A wallet should also drop a signature it has seen before.
func VerifyWebhook(lsp onionmsg.NodeKey, h http.Header, body []byte,
	now time.Time) (*Notification, error) {

	ts := h.Get("x-lsps5-timestamp")
	at, err := time.Parse(WebhookTimeFormat, ts)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp %q", ErrBadWebhook, ts)
	}
	if d := now.Sub(at); d > MaxWebhookSkew || d < -MaxWebhookSkew {
		return nil, fmt.Errorf("%w: timestamp %s is %s from now",
			ErrBadWebhook, ts, d)
	}
	var sig [64]byte
	sigHex := h.Get("x-lsps5-signature")
	if len(sigHex) != 128 {
		return nil, fmt.Errorf("%w: signature of %d hex digits", ErrBadWebhook,
			len(sigHex))
	}
	if _, err := hex.Decode(sig[:], []byte(sigHex)); err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", ErrBadWebhook)
	}
	err = onionmsg.VerifyTagged([]byte(WebhookTag), WebhookMessage(ts, body),
		sig, lsp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadWebhook, err)
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil || n.JSONRPC != "2.0" ||
		n.Method == "" {
		return nil, fmt.Errorf("%w: not a JSON-RPC 2.0 notification", ErrBadWebhook)
	}
	return &n, nil
}
