package client

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Webhooks: the receiver LSP wakes a receiver with LSPS5 (bLIP-55)
// notifications, an HTTP POST to each webhook it registered. The body is a
// JSON-RPC 2.0 notification whose params are always an object; two headers
// authenticate it (55:389-400):
//
//	x-lsps5-timestamp: 2026-11-21T12:00:00.000Z
//	x-lsps5-signature: <104 zbase32 characters>
//
// The signature is the LSP node's ln_signature (bLIP-50, what lnd's
// signmessage makes) over the UTF-8 bytes of
//
//	LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At ${timestamp} I notify ${body}
//
// where ${timestamp} is the header as sent and ${body} the request body
// exactly as received (55:350-370). VerifyWebhook checks one; a Validator
// also refuses one it has seen before.
//
// The timestamp is bLIP-55's YYYY-MM-DDThh:mm:ss.uuuZ by default. LDK's
// LSPS5 client re-renders the timestamp it parsed with chrono's to_rfc3339
// before it checks the signature, so it accepts only that form
// (2026-11-21T12:00:00.123+00:00, and no fraction when the milliseconds are
// 0); an LSP whose wallets use LDK's validator sets webhook.timestamp=ldk.
// VerifyWebhook accepts both, and any RFC 3339 form a signer signed as sent.

// WebhookMessagePrefix starts every message a webhook's signature covers.
// The node key signs nothing else this way.
const WebhookMessagePrefix = "LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At "

// The notification methods a receiver LSP sends.
const (
	// MethodWebhookRegistered: the webhook was just set (added, or its URL
	// changed) by lsps5.set_webhook or the registration's webhook_url.
	// Sent to that webhook only, and before anything else to it. No
	// params.
	MethodWebhookRegistered = "lsps5.webhook_registered"

	// MethodPaymentIncoming: a held payment waits in the mailbox. No
	// params; read the mailbox.
	MethodPaymentIncoming = "lsps5.payment_incoming"

	// MethodExpirySoon is bLIP-55's: an HTLC on a channel between the LSP
	// and the client within 24 blocks of a timeout that would close the
	// channel. asynclsp holds no HTLC on such a channel and never sends
	// it; see MethodHoldExpiring.
	MethodExpirySoon = "lsps5.expiry_soon"

	// MethodHoldExpiring: a pending mailbox item nears its deadline (the
	// sender LSP will cancel the held payment). Params:
	// HoldExpiringParams. asynclsp's own method.
	MethodHoldExpiring = "asynclsp.hold_expiring"

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

// ExpirySoonParams are lsps5.expiry_soon's params (never sent by asynclsp).
type ExpirySoonParams struct {
	Timeout uint32 `json:"timeout"`
}

// HoldExpiringParams are asynclsp.hold_expiring's params: how many pending
// items near their deadline, and the earliest deadline among them, by
// height and by time.
type HoldExpiringParams struct {
	Count          int       `json:"count"`
	DeadlineHeight uint32    `json:"deadline_height"`
	DeadlineTime   time.Time `json:"deadline_time"`
}

// InvoicesLowParams are asynclsp.invoices_low's params.
type InvoicesLowParams struct {
	Available int `json:"available"`
	Threshold int `json:"threshold"`
}

// The forms of x-lsps5-timestamp a receiver LSP may send
// (Options.Webhook.Timestamp).
const (
	// TimestampSpec is bLIP-55's (and LSPS0.datetime's)
	// YYYY-MM-DDThh:mm:ss.uuuZ.
	TimestampSpec = "spec"

	// TimestampLDK is what chrono's DateTime<Utc>::to_rfc3339() writes for
	// a time of millisecond precision, the form LDK's validator checks
	// signatures with: a +00:00 offset, never Z, and the fraction with
	// SecondsFormat::AutoSi's 0, 3, 6 or 9 digits (here 0 or 3).
	TimestampLDK = "ldk"
)

// WebhookTimeFormat is the x-lsps5-timestamp layout of TimestampSpec.
const WebhookTimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTimestamp writes t, truncated to the millisecond, in form.
func FormatTimestamp(t time.Time, form string) (string, error) {
	t = t.UTC().Truncate(time.Millisecond)
	switch form {
	case TimestampSpec:
		return t.Format(WebhookTimeFormat), nil
	case TimestampLDK:
		// chrono's write_rfc3339 with AutoSi and use_z false: no
		// fraction when the nanoseconds are 0, else 3 digits when they
		// are whole milliseconds; then the offset as +00:00.
		if t.Nanosecond() == 0 {
			return t.Format("2006-01-02T15:04:05") + "+00:00", nil
		}
		return t.Format("2006-01-02T15:04:05.000") + "+00:00", nil
	}
	return "", fmt.Errorf("timestamp form %q: want %q or %q", form,
		TimestampSpec, TimestampLDK)
}

// MaxWebhookSkew is how far a webhook's timestamp may be from now when a
// wallet checks it (LDK's ten minutes).
const MaxWebhookSkew = 10 * time.Minute

// ErrBadWebhook: a webhook that is not signed by the LSP, is too old or
// from the future, is not a notification, or was seen before.
var ErrBadWebhook = errors.New("bad webhook")

// WebhookMessage returns the bytes a webhook's signature covers
// (55:350-357).
func WebhookMessage(timestamp string, body []byte) []byte {
	msg := []byte(WebhookMessagePrefix + timestamp + " I notify ")
	return append(msg, body...)
}

// VerifyWebhook checks a webhook's headers and body: the ln_signature of
// the LSP's node key over the timestamp as sent and the body as received,
// a timestamp within MaxWebhookSkew of now, a JSON-RPC 2.0 notification
// with object params. It does not refuse a webhook seen before: a
// Validator does.
func VerifyWebhook(lsp onionmsg.NodeKey, h http.Header, body []byte,
	now time.Time) (*Notification, error) {

	n, _, err := verifyWebhook(lsp, h, body, now)
	return n, err
}

func verifyWebhook(lsp onionmsg.NodeKey, h http.Header, body []byte,
	now time.Time) (*Notification, []byte, error) {

	// 55:416-418: both headers, in the expected formats.
	ts := h.Get("x-lsps5-timestamp")
	at, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: timestamp %q", ErrBadWebhook, ts)
	}
	if d := now.Sub(at); d > MaxWebhookSkew || d < -MaxWebhookSkew {
		return nil, nil, fmt.Errorf("%w: timestamp %s is %s from now",
			ErrBadWebhook, ts, d)
	}
	sig := h.Get("x-lsps5-signature")
	if sig == "" {
		return nil, nil, fmt.Errorf("%w: no x-lsps5-signature", ErrBadWebhook)
	}
	// 55:426-428: the signature against the template, with the timestamp
	// and the body as they came.
	msg := WebhookMessage(ts, body)
	if err := onionmsg.VerifyLNSignature(msg, sig, lsp); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadWebhook, err)
	}
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil || n.JSONRPC != "2.0" ||
		n.Method == "" || len(n.Params) == 0 || n.Params[0] != '{' {

		return nil, nil, fmt.Errorf("%w: not a JSON-RPC 2.0 notification "+
			"with object params", ErrBadWebhook)
	}
	return &n, msg, nil
}

// MaxRecentWebhooks is how many webhooks a Validator remembers (LDK's
// keeps 5).
const MaxRecentWebhooks = 64

// Validator verifies webhooks from one LSP, as VerifyWebhook does, and
// refuses any of the last MaxRecentWebhooks it accepted when it comes
// again, as LDK's LSPS5Validator does. Use one per LSP; it is safe for
// concurrent use.
//
// Replays are recognised by the signature string, as LDK's are, and by the
// signed message. ECDSA signatures are malleable: anyone may turn a valid
// signature into another valid one over the same message, so a check on
// signature strings alone is best effort. The message (timestamp and body)
// cannot be changed without the LSP's key, so checking it too closes that
// gap; a receiver LSP of asynclsp never signs the same message twice (its
// timestamps are distinct). It stays best effort all the same: only the
// last few are remembered, and a webhook older than that but within
// MaxWebhookSkew is accepted again. HTTPS (55:432-434) is the real guard.
type Validator struct {
	lsp onionmsg.NodeKey

	mu     sync.Mutex
	recent []seen // a ring of MaxRecentWebhooks
	next   int
}

type seen struct {
	sig    string
	digest [32]byte
}

// NewValidator returns a Validator of the webhooks signed by lsp.
func NewValidator(lsp onionmsg.NodeKey) *Validator {
	return &Validator{lsp: lsp}
}

// Validate checks one webhook (see VerifyWebhook) and that it is not one of
// the last it accepted.
func (v *Validator) Validate(h http.Header, body []byte, now time.Time) (*Notification, error) {
	n, msg, err := verifyWebhook(v.lsp, h, body, now)
	if err != nil {
		return nil, err
	}
	s := seen{sig: h.Get("x-lsps5-signature"), digest: sha256.Sum256(msg)}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range v.recent {
		if r.sig == s.sig || r.digest == s.digest {
			return nil, fmt.Errorf("%w: replayed (seen among the last %d)",
				ErrBadWebhook, MaxRecentWebhooks)
		}
	}
	if len(v.recent) < MaxRecentWebhooks {
		v.recent = append(v.recent, s)
	} else {
		v.recent[v.next] = s
		v.next = (v.next + 1) % MaxRecentWebhooks
	}
	return n, nil
}
