package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config says where the daemon's API is and how to call it.
type Config struct {
	// URL is the API's base, e.g. "http://127.0.0.1:8270".
	URL string

	// Token is an admin token, "<id>.<secret>" (asynclspd writes one to
	// <datadir>/admin.token).
	Token string

	// HTTPClient makes the requests. Default: a client with a 30s timeout.
	HTTPClient *http.Client
}

// Client calls the admin API. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("adminclient: URL %q must be an http or https URL", cfg.URL)
	}
	if cfg.Token == "" {
		return nil, errors.New("adminclient: a token is required")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{cfg: cfg, base: base}, nil
}

// Code is an error code of the API. It is an error itself, so that
// errors.Is(err, adminclient.CodeNotFound) tells what an *Error was.
type Code string

// Error returns the code.
func (c Code) Error() string { return string(c) }

// Error is an error answer of the API.
type Error struct {
	Status int

	// Code is empty if the answer was not the API's (a proxy's page).
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("admin API: HTTP %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("admin API: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// Is matches the error's Code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// ErrorBody is the body of every error answer:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Info returns who the daemon is.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	return &out, c.do(ctx, http.MethodGet, "/v1/admin/info", nil, nil, &out)
}

// CreateToken makes a token; the answer's Bearer is shown only this once.
func (c *Client) CreateToken(ctx context.Context, name, role string) (*CreatedToken, error) {
	var out CreatedToken
	return &out, c.do(ctx, http.MethodPost, "/v1/admin/tokens", nil,
		CreateTokenRequest{Name: name, Role: role}, &out)
}

// Tokens lists every token, revoked ones included, oldest first.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out TokenList
	err := c.do(ctx, http.MethodGet, "/v1/admin/tokens", nil, nil, &out)
	return out.Tokens, err
}

// RevokeToken revokes the token with id; it stops working at once.
// Revoking it again changes nothing.
func (c *Client) RevokeToken(ctx context.Context, id string) (*Token, error) {
	var out Token
	return &out, c.do(ctx, http.MethodPost,
		"/v1/admin/tokens/"+url.PathEscape(id)+"/revoke", nil, nil, &out)
}

// PageOptions choose a page of a listing.
type PageOptions struct {
	// Limit is the page size, 1 to 1000; default 100.
	Limit int

	// Cursor is the previous page's NextCursor.
	Cursor string
}

func (o PageOptions) query(q url.Values) url.Values {
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	return q
}

// Receivers returns a page of registered receivers, by node key.
func (c *Client) Receivers(ctx context.Context, opts PageOptions) (*ReceiverPage, error) {
	var out ReceiverPage
	return &out, c.do(ctx, http.MethodGet, "/v1/admin/receivers",
		opts.query(url.Values{}), nil, &out)
}

// MailboxOptions filter the mailbox listing; zero fields match everything.
type MailboxOptions struct {
	// Receiver is a receiver's node key in hex.
	Receiver string

	// States are mailbox states (MailboxPending, ...).
	States []string

	PageOptions
}

// Mailbox returns a page of mailbox items, newest first.
func (c *Client) Mailbox(ctx context.Context, opts MailboxOptions) (*MailboxPage, error) {
	q := url.Values{}
	if opts.Receiver != "" {
		q.Set("receiver", opts.Receiver)
	}
	for _, s := range opts.States {
		q.Add("state", s)
	}
	var out MailboxPage
	return &out, c.do(ctx, http.MethodGet, "/v1/admin/mailbox",
		opts.PageOptions.query(q), nil, &out)
}

// Stats returns the daemon's counts.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var out Stats
	return &out, c.do(ctx, http.MethodGet, "/v1/admin/stats", nil, nil, &out)
}

// Reannounce has the sender role announce its HELD payments to the receiver
// LSP whose node key is receiverLSP (hex) again, as if that LSP had never
// acknowledged them: for a receiver LSP that lost what it had stored. The
// answer says how many. It fails with CodeNotFound if the daemon does not
// run the sender role.
func (c *Client) Reannounce(ctx context.Context, receiverLSP string) (*Reannounced, error) {
	var out Reannounced
	return &out, c.do(ctx, http.MethodPost, "/v1/admin/sender/reannounce", nil,
		ReannounceRequest{ReceiverLSP: receiverLSP}, &out)
}

// maxAnswer caps an answer's body.
const maxAnswer = 8 << 20

// do makes one call and decodes its answer into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorBody
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return &Error{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		msg := strings.TrimSpace(string(data))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &Error{Status: resp.StatusCode, Message: msg}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: decoding the answer: %w", err)
	}
	return nil
}
