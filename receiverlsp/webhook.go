package receiverlsp

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// errPermanent marks a webhook failure that retrying will not fix.
var errPermanent = errors.New("permanent webhook failure")

// notification builds a webhook body: a JSON-RPC 2.0 notification (no id).
func notification(method string, params any) []byte {
	if params == nil {
		params = struct{}{}
	}
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params"`
	}{"2.0", method, params})
	if err != nil {
		panic("webhook params do not marshal: " + err.Error())
	}
	return body
}

// deliver posts body to url, retrying with doubling backoff (on the role's
// clock) up to MaxAttempts, and gives up early on a permanent failure.
func (r *Role) deliver(ctx context.Context, url string, body []byte) error {
	o := r.opts.Webhook
	backoff := o.FirstBackoff
	for attempt := 1; ; attempt++ {
		err := r.post(ctx, url, body)
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
// own timestamp.
func (r *Role) post(ctx context.Context, url string, body []byte) error {
	if err := checkWebhookURL(url); err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	ts := r.clock.Now().UTC().Format(client.WebhookTimeFormat)
	sig, err := r.signer.SignTagged(ctx, []byte(client.WebhookTag),
		client.WebhookMessage(ts, body))
	if err != nil {
		return fmt.Errorf("sign webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url,
		bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-lsps5-timestamp", ts)
	req.Header.Set("x-lsps5-signature", hex.EncodeToString(sig[:]))
	resp, err := r.webhook.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests, c >= 500:
		return fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return fmt.Errorf("%w: webhook answered %s", errPermanent, resp.Status)
	}
}
