// Package client is a small Go client of the sender LSP's HTTP API, for
// wallet backends: create a payment (idempotently), read and list payments,
// cancel one, and follow their events on a stream that resumes by itself
// after a disconnect. It depends on the standard library and lnd's clock
// only, so a wallet backend does not pull in lnd.
//
// Floor: roles (the wallet's client). Owns the sender API's wire types and
// client; it imports nothing of asynclsp's.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/clock"
)

// Config says where the API is and how to call it.
type Config struct {
	// URL is the API's base, e.g. "https://lsp.example.com"; the paths
	// /v1/... are appended.
	URL string

	// Token is the bearer token the LSP's operator issued: "<id>.<secret>".
	Token string

	// HTTPClient makes the requests. Default: a new http.Client. Do not
	// give it a Timeout: it would cut event streams; Timeout below bounds
	// every other call.
	HTTPClient *http.Client

	// Timeout bounds each call but Events. Default 30s.
	Timeout time.Duration

	// ReconnectWait is the wait before an event stream reconnects,
	// doubling after each failed attempt up to MaxReconnectWait.
	// Defaults 1s and 1 minute.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration

	// RetryWait is the wait before a retried call (CreatePaymentRetry)
	// is sent again, doubling after each failed attempt up to
	// MaxRetryWait. Defaults 500ms and 30s.
	RetryWait    time.Duration
	MaxRetryWait time.Duration

	// RetryAttempts bounds the attempts of a retried call; 0: as many
	// as fit before its context ends.
	RetryAttempts int

	// Clock paces the reconnect and retry waits. Default: the wall
	// clock.
	Clock clock.Clock

	// Logger notes lost event streams. Default: slog.Default().
	Logger *slog.Logger
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	log  *slog.Logger
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("client: URL %q must be an http or https URL", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errors.New("client: a token is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.ReconnectWait <= 0 {
		cfg.ReconnectWait = time.Second
	}
	if cfg.MaxReconnectWait < cfg.ReconnectWait {
		cfg.MaxReconnectWait = max(time.Minute, cfg.ReconnectWait)
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 500 * time.Millisecond
	}
	if cfg.MaxRetryWait < cfg.RetryWait {
		cfg.MaxRetryWait = max(30*time.Second, cfg.RetryWait)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Client{cfg: cfg, base: base,
		log: cfg.Logger.With("component", "senderlsp-client")}, nil
}

// Code is an API error code. It is an error itself, so that
// errors.Is(err, client.CodeNotFound) tells what an *Error was.
type Code string

// Error returns the code.
func (c Code) Error() string { return string(c) }

// The API's error codes.
const (
	CodeInvalidRequest         Code = "invalid_request"
	CodeUnauthorized           Code = "unauthorized"
	CodeForbidden              Code = "forbidden"
	CodeNotFound               Code = "not_found"
	CodeMethodNotAllowed       Code = "method_not_allowed"
	CodeNotCancelable          Code = "not_cancelable"
	CodeRequestTooLarge        Code = "request_too_large"
	CodeReceiverUnknown        Code = "receiver_unknown"
	CodeNoInvoice              Code = "no_invoice"
	CodeAmountOutOfRange       Code = "amount_out_of_range"
	CodeBadInvoice             Code = "bad_invoice"
	CodeInternal               Code = "internal"
	CodeInsufficientLiquidity  Code = "insufficient_liquidity"
	CodeNoHTLCSlots            Code = "no_htlc_slots"
	CodeReceiverLSPUnreachable Code = "receiver_lsp_unreachable"
	CodeUnavailable            Code = "unavailable"
)

// Error is an error answer of the API.
type Error struct {
	// Status is the HTTP status.
	Status int

	// Code is the API's error code; empty if the answer was not the
	// API's (a proxy's error page, say).
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("sender LSP API: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("sender LSP API: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Is matches the error's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// Temporary reports whether the same request may succeed later: the LSP
// lacks liquidity or slots for now, the receiver LSP did not answer, or
// the server is busy, starting or stopping.
func (e *Error) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// maxAnswer caps an answer's body: a page of 1000 payments fits well.
const maxAnswer = 8 << 20

// do makes one call and decodes its answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values,
	header http.Header, body, out any) (status int, err error) {

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, readError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return resp.StatusCode, fmt.Errorf("sender LSP API: decoding the answer: %w", err)
	}
	return resp.StatusCode, nil
}

func (c *Client) url(path string, query url.Values) string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	return u.String()
}

// readError reads an error answer: the API's JSON, or whatever a proxy
// put there.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error *struct {
			Code    Code   `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error != nil && body.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: body.Error.Code,
			Message: body.Error.Message}
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200]
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Message: msg}
}
