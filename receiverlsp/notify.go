package receiverlsp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/lightningnetwork/lnd/clock"
)

// The LSPS5 notifications (bLIP-55) this LSP sends, and the one place its
// node key signs anything. A notice is a method of ours and params of ours:
// a peer supplies neither, so no text of a peer's (an app_name, a URL) can
// reach a signed message. What is signed is
//
//	LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At ${timestamp} I notify ${body}
//
// with the timestamp and the body built here.

// noticeMethod is one of the notification methods this LSP sends. It is not
// a string, so nothing but these constants is one.
type noticeMethod int

const (
	noticeWebhookRegistered noticeMethod = iota + 1
	noticePaymentIncoming
	noticeHoldExpiring
	noticeInvoicesLow
)

var noticeNames = map[noticeMethod]string{
	// 55:492-499: no params.
	noticeWebhookRegistered: client.MethodWebhookRegistered,
	noticePaymentIncoming:   client.MethodPaymentIncoming,
	// Ours (55:476-484): our own prefix, never lsps5.
	noticeHoldExpiring: client.MethodHoldExpiring,
	noticeInvoicesLow:  client.MethodInvoicesLow,
}

func (m noticeMethod) String() string { return noticeNames[m] }

// noticeParams are the params of a notice: one of the types below, whose
// fields are numbers and times only.
type noticeParams interface{ noticeParams() }

// noParams is {} (55:339-342: params is always an object).
type noParams struct{}

// holdExpiringParams are asynclsp.hold_expiring's (client.HoldExpiringParams),
// fields in alphabetical order.
type holdExpiringParams struct {
	Count          int      `json:"count"`
	DeadlineHeight uint32   `json:"deadline_height"`
	DeadlineTime   lspsTime `json:"deadline_time"`
}

// invoicesLowParams are asynclsp.invoices_low's (client.InvoicesLowParams).
type invoicesLowParams struct {
	Available int `json:"available"`
	Threshold int `json:"threshold"`
}

func (noParams) noticeParams()           {}
func (holdExpiringParams) noticeParams() {}
func (invoicesLowParams) noticeParams()  {}

// lspsTime is a time as LSPS0.datetime writes it (50:993-998):
// YYYY-MM-DDThh:mm:ss.uuuZ.
type lspsTime time.Time

func (t lspsTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(client.WebhookTimeFormat) + `"`), nil
}

// notice is one notification to send.
type notice struct {
	method noticeMethod
	params noticeParams
}

// body is the notification's exact HTTP body: a JSON-RPC 2.0 notification
// (55:319-342), byte for byte what LDK's serde writes for the same one,
// e.g. {"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}.
func (n notice) body() []byte {
	name := n.method.String()
	params := n.params
	if params == nil {
		params = noParams{}
	}
	b, err := json.Marshal(struct {
		JSONRPC string       `json:"jsonrpc"`
		Method  string       `json:"method"`
		Params  noticeParams `json:"params"`
	}{"2.0", name, params})
	if err != nil || name == "" {
		panic(fmt.Sprintf("notice %d does not marshal: %v", n.method, err))
	}
	return b
}

// notary signs notices with the node key; see signed.
type notary struct {
	signer onionmsg.MessageSigner
	clock  clock.Clock
	form   string

	mu   sync.Mutex
	last time.Time
}

// signed returns a notice's body, its x-lsps5-timestamp and its
// x-lsps5-signature: the node's ln_signature over exactly the LSPS5 message
// (55:344-387). It is the only thing that has the node key sign: its input
// is a notice (our method, our params) and its own clock. Timestamps are
// distinct, a millisecond apart at least, so no two signed messages are the
// same and a wallet's replay check never mistakes a new webhook for an old
// one.
func (n *notary) signed(ctx context.Context, nt notice) (body []byte, ts, sig string, err error) {
	body = nt.body()
	n.mu.Lock()
	at := n.clock.Now().UTC().Truncate(time.Millisecond)
	if !at.After(n.last) {
		at = n.last.Add(time.Millisecond)
	}
	n.last = at
	n.mu.Unlock()
	if ts, err = client.FormatTimestamp(at, n.form); err != nil {
		return nil, "", "", err
	}
	sig, err = n.signer.SignMessage(ctx, client.WebhookMessage(ts, body))
	if err != nil {
		return nil, "", "", fmt.Errorf("sign webhook: %w", err)
	}
	return body, ts, sig, nil
}

// webhookStats counts webhook attempts by outcome: only a 200 is delivered
// (55:439-443).
type webhookStats struct {
	delivered, failed atomic.Uint64
}

// errPermanent marks a webhook failure that retrying will not fix.
var errPermanent = errors.New("permanent webhook failure")

// deliver posts n to url, retrying with doubling backoff (on the role's
// clock) up to MaxAttempts, and gives up early on a permanent failure.
func (r *Role) deliver(ctx context.Context, url string, n notice) error {
	o := r.opts.Webhook
	backoff := o.FirstBackoff
	for attempt := 1; ; attempt++ {
		err := r.post(ctx, url, n)
		if err == nil || errors.Is(err, errPermanent) || attempt >= o.MaxAttempts {
			return err
		}
		r.log.Debug("webhook failed, retrying", "attempt", attempt,
			"retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.clock.TickAfter(backoff):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// post makes one signed attempt. Each attempt is signed afresh, with its
// own timestamp. Only 200 OK is a success, and the rest of the answer is
// ignored (55:437-444); a timeout, 408, 429 or 5xx may be retried, anything
// else (a redirect, which is never followed, other 2xx, 4xx) is permanent.
func (r *Role) post(ctx context.Context, url string, n notice) error {
	if err := validateWebhookURL(url); err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	body, ts, sig, err := r.notary.signed(ctx, n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url,
		bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	// 55:393-400.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-lsps5-timestamp", ts)
	req.Header.Set("x-lsps5-signature", sig)
	resp, err := r.webhook.Do(req)
	if err != nil {
		r.hooks.failed.Add(1)
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c == http.StatusOK:
		r.hooks.delivered.Add(1)
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		r.hooks.failed.Add(1)
		return fmt.Errorf("webhook answered %s", resp.Status)
	default:
		r.hooks.failed.Add(1)
		return fmt.Errorf("%w: webhook answered %s", errPermanent, resp.Status)
	}
}
