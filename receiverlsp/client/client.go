// Package client is the Go client of a receiver LSP's HTTP API, for wallet
// backends: register the receiver's node key, keep the LSP stocked with
// invoices made on the receiver's own node, read the mailbox, sign and post
// releases, and wait for the outcome. It also holds the API's JSON types,
// the registration challenge format and webhook verification, which the
// server shares.
//
// Floor: roles (the receiver's client). Owns the receiver API's wire types and
// client; it imports only onionmsg, so a wallet backend pulls in little.
package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lnwire"
)

// InvoiceMaker makes an invoice on the receiver's own node: amount 0 for an
// amountless one, valid for expiry, with a route hint through the receiver
// LSP (lnd: AddInvoice with private=true over a private channel to the LSP,
// or explicit route_hints).
type InvoiceMaker interface {
	MakeInvoice(ctx context.Context, amount lnwire.MilliSatoshi, expiry time.Duration) (string, error)
}

// Config assembles a Client.
type Config struct {
	// BaseURL is the receiver LSP's API, e.g. https://lsp.example/.
	BaseURL string

	// NodeKey is the receiver's node key; Signer or MessageSigner signs
	// with it, and at least one is required. Signer makes BIP-340
	// signatures (lnd's signrpc SignMessage with a tag, or
	// onionmsg.NewPrivKeySigner) and is used when set. Otherwise
	// MessageSigner makes ln_signatures, what every wallet's signmessage
	// makes (lnd's lnrpc SignMessage, CLN, LDK Node, the Breez SDK):
	// registrations and releases are then signed as ln_signatures.
	NodeKey       onionmsg.NodeKey
	Signer        onionmsg.Signer
	MessageSigner onionmsg.MessageSigner

	// LSPKey is the receiver LSP's node key. If set, a registration
	// challenge for another LSP is refused before signing.
	LSPKey onionmsg.NodeKey

	// Token is a token from an earlier registration, if any.
	Token string

	// HTTPClient defaults to one with a 90s timeout (long-polls wait up
	// to a minute).
	HTTPClient *http.Client

	// RetryWait is the wait before a retried call (PostReleaseRetry,
	// ReleaseRetry) is sent again, doubling after each failed attempt up
	// to MaxRetryWait. Defaults 500ms and 30s.
	RetryWait    time.Duration
	MaxRetryWait time.Duration

	// RetryAttempts bounds the attempts of a retried call; 0: as many
	// as fit before its context ends.
	RetryAttempts int

	// Clock dates releases and paces the retry waits. Default: the wall
	// clock.
	Clock clock.Clock
}

// Client talks to one receiver LSP for one receiver. It is safe for
// concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client

	mu    sync.Mutex
	token string
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error says which code the API answered, with its message.
func (e *APIError) Error() string {
	return fmt.Sprintf("receiver LSP: %s (%d): %s", e.Code, e.Status, e.Message)
}

// Temporary reports whether the same request may succeed later: the
// LSP's database or bus failed (503 unavailable), any other 5xx, or 429.
func (e *APIError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// IsCode reports whether err is an APIError with the code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// New returns a client.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("client: base URL %q", cfg.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/" // the API's paths resolve below it
	}
	if cfg.Signer == nil && cfg.MessageSigner == nil {
		return nil, errors.New("client: a signer or a message signer is required")
	}
	if _, err := cfg.NodeKey.PubKey(); err != nil {
		return nil, fmt.Errorf("client: node key: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 90 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 500 * time.Millisecond
	}
	if cfg.MaxRetryWait < cfg.RetryWait {
		cfg.MaxRetryWait = max(30*time.Second, cfg.RetryWait)
	}
	return &Client{cfg: cfg, base: base, http: cfg.HTTPClient, token: cfg.Token}, nil
}

// Token is the bearer token: keep it to skip registering next time.
func (c *Client) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Register proves the receiver holds its node key and registers it (again:
// a new token replaces the old one) with an optional webhook URL. It signs
// the challenge with Config.Signer (BIP-340) if set, else as an
// ln_signature with Config.MessageSigner.
func (c *Client) Register(ctx context.Context, webhookURL string) (*RegisterResponse, error) {
	var ch ChallengeResponse
	err := c.do(ctx, "POST", "/v1/register/challenge", false,
		ChallengeRequest{NodeKey: c.cfg.NodeKey}, &ch)
	if err != nil {
		return nil, err
	}
	raw, err := hex.DecodeString(ch.Challenge)
	if err != nil {
		return nil, fmt.Errorf("%w: not hex", ErrBadChallenge)
	}
	parsed, err := ParseChallenge(raw)
	if err != nil {
		return nil, err
	}
	if err := parsed.Check(c.cfg.LSPKey, c.cfg.NodeKey, c.cfg.Clock.Now()); err != nil {
		return nil, err
	}
	sig, err := c.signChallenge(ctx, parsed)
	if err != nil {
		return nil, fmt.Errorf("client: sign challenge: %w", err)
	}
	var reg RegisterResponse
	err = c.do(ctx, "POST", "/v1/register", false, RegisterRequest{
		NodeKey: c.cfg.NodeKey, Challenge: ch.Challenge,
		Signature: sig, WebhookURL: webhookURL,
	}, &reg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.token = reg.Token
	c.mu.Unlock()
	return &reg, nil
}

// signChallenge signs a checked challenge as RegisterRequest.Signature
// takes it: BIP-340 in hex with the Signer, else an ln_signature of its
// LNMessage with the MessageSigner.
func (c *Client) signChallenge(ctx context.Context, ch *Challenge) (string, error) {
	if c.cfg.Signer == nil {
		return c.cfg.MessageSigner.SignMessage(ctx, ch.LNMessage())
	}
	sig, err := c.cfg.Signer.SignTagged(ctx, []byte(onionmsg.TagRegister), ch.Bytes())
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sig[:]), nil
}

// Upload hands the LSP invoices the receiver made.
func (c *Client) Upload(ctx context.Context, invoices []string) (*UploadResponse, error) {
	var resp UploadResponse
	err := c.do(ctx, "POST", "/v1/invoices", true, UploadRequest{Invoices: invoices}, &resp)
	return &resp, err
}

// Refill makes n invoices of amount (0: amountless) valid for expiry with
// maker and uploads them in batches of at most batch (default 100).
func (c *Client) Refill(ctx context.Context, maker InvoiceMaker, n int,
	amount lnwire.MilliSatoshi, expiry time.Duration, batch int) (*UploadResponse, error) {

	if batch <= 0 {
		batch = 100
	}
	total := &UploadResponse{}
	for done := 0; done < n; {
		size := min(batch, n-done)
		invoices := make([]string, size)
		for i := range invoices {
			inv, err := maker.MakeInvoice(ctx, amount, expiry)
			if err != nil {
				return total, fmt.Errorf("client: make invoice: %w", err)
			}
			invoices[i] = inv
		}
		resp, err := c.Upload(ctx, invoices)
		if err != nil {
			return total, err
		}
		for _, res := range resp.Results {
			res.Index += done
			total.Results = append(total.Results, res)
		}
		total.Accepted += resp.Accepted
		total.Rejected += resp.Rejected
		total.Counts = resp.Counts
		done += size
	}
	return total, nil
}

// Counts returns the receiver's stock of invoices at the LSP.
func (c *Client) Counts(ctx context.Context) (*InvoiceCounts, error) {
	var counts InvoiceCounts
	err := c.do(ctx, "GET", "/v1/invoices", true, nil, &counts)
	return &counts, err
}

// Mailbox lists the pending items, oldest first.
func (c *Client) Mailbox(ctx context.Context) ([]Item, error) {
	var resp MailboxResponse
	err := c.do(ctx, "GET", "/v1/mailbox", true, nil, &resp)
	return resp.Items, err
}

// Item reads one item. With wait > 0 the LSP holds the answer until the
// item's version passes after (after 0: until it is final), or wait passes.
func (c *Client) Item(ctx context.Context, sender onionmsg.NodeKey, hold onionmsg.HoldID,
	after uint64, wait time.Duration) (*Item, error) {

	path := "/v1/mailbox/" + sender.String() + "/" + hold.String()
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	if after > 0 {
		q.Set("after", strconv.FormatUint(after, 10))
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var it Item
	err := c.do(ctx, "GET", path, true, nil, &it)
	return &it, err
}

// Release signs a release of the item, valid for ttl from now, and posts
// it; the LSP relays it to the sender LSP. Posting again is harmless.
func (c *Client) Release(ctx context.Context, it *Item, ttl time.Duration) (*Item, error) {
	rel, err := c.SignRelease(ctx, it, ttl)
	if err != nil {
		return nil, err
	}
	return c.PostRelease(ctx, rel)
}

// SignRelease signs a release of the item, valid for ttl from now, and
// returns it as PostRelease takes it: the hex of its TLV bytes. It signs
// with Config.Signer (BIP-340) if set, else as an ln_signature with
// Config.MessageSigner (ReleaseHeldHTLC.SignLN).
func (c *Client) SignRelease(ctx context.Context, it *Item, ttl time.Duration) (string, error) {
	if it.ReceiverKey != c.cfg.NodeKey {
		return "", fmt.Errorf("client: item for receiver %s, we are %s",
			it.ReceiverKey, c.cfg.NodeKey)
	}
	rel := onionmsg.NewRelease(it.Held(), c.cfg.Clock.Now(), ttl)
	var err error
	if c.cfg.Signer != nil {
		err = rel.Sign(ctx, c.cfg.Signer)
	} else {
		err = rel.SignLN(ctx, c.cfg.MessageSigner)
	}
	if err != nil {
		return "", err
	}
	raw, err := rel.Encode()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(raw), nil
}

// PostRelease posts a release signed elsewhere: the hex of its TLV bytes.
func (c *Client) PostRelease(ctx context.Context, releaseHex string) (*Item, error) {
	var out Item
	err := c.do(ctx, "POST", "/v1/releases", true, ReleaseRequest{Release: releaseHex}, &out)
	return &out, err
}

// WaitOutcome waits, long-polling, for the sender LSP's word on a released
// item, and returns the item as it is then: settled or canceled (final), or
// pending again (the sender LSP rejected the release; Reason says why: sign
// a fresh one), or expired. An item that is not released is returned as it
// is.
func (c *Client) WaitOutcome(ctx context.Context, it *Item) (*Item, error) {
	cur := it
	for cur.State == StateReleased {
		next, err := c.Item(ctx, it.SenderLSP, it.HoldID, cur.Version, 30*time.Second)
		if err != nil {
			return cur, err
		}
		cur = next
	}
	return cur, nil
}

// do sends one request and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, path string, auth bool, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ref, err := url.Parse(strings.TrimPrefix(path, "/"))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.ResolveReference(ref).String(), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		tok := c.Token()
		if tok == "" {
			return errors.New("client: not registered: call Register first")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		// The answer was cut: as lost as one that never came.
		return &url.Error{Op: method, URL: req.URL.String(), Err: err}
	}
	if resp.StatusCode >= 300 {
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http",
				Message: strings.TrimSpace(string(data))}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return json.Unmarshal(data, out)
}
