package receiverlsp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// LSPS5 (bLIP-55) in the LSP's role: a receiver's webhooks, set, listed and
// removed over LSPS0, keyed by (receiver node key, app_name), stored before
// the answer. The notifications themselves are notify.go's and worker.go's.

// maxAppName bounds lsps5.set_webhook's app_name (55:125); maxWebhookURL
// (1024, 55:145-146) its webhook.
const maxAppName = 64

// lsps5Error is one of bLIP-55's errors (55:238-285), with the code and
// message LDK's lightning-liquidity answers (lsps5/msgs.rs). On the HTTP
// API it is the error it wraps.
type lsps5Error struct {
	code int
	msg  string
	data any
	kind error // ErrInvalid or ErrConflict, for the HTTP API
}

func (e *lsps5Error) Error() string { return e.msg }
func (e *lsps5Error) Unwrap() error { return e.kind }

func (e *lsps5Error) lsps0() *lsps0.Error {
	return &lsps0.Error{Code: e.code, Message: e.msg, Data: e.data}
}

var (
	errAppNameTooLong = &lsps5Error{client.LSPS5TooLong,
		"App name exceeds maximum length", nil, ErrInvalid}
	errWebhookTooLong = &lsps5Error{client.LSPS5TooLong,
		"Webhook URL exceeds maximum length", nil, ErrInvalid}
	errURLParse = &lsps5Error{client.LSPS5URLParseError,
		"Error parsing URL", nil, ErrInvalid}
	errUnsupportedProtocol = &lsps5Error{client.LSPS5UnsupportedProtocol,
		"Unsupported protocol: HTTPS is required", nil, ErrInvalid}
	errAppNameNotFound = &lsps5Error{client.LSPS5AppNameNotFound,
		"App name not found", nil, ErrNotFound}
)

// errTooManyWebhooks carries max in its data (55:247-251; LDK sends none).
func errTooManyWebhooks(max int) *lsps5Error {
	return &lsps5Error{client.LSPS5TooManyWebhooks,
		"Maximum number of webhooks allowed per client",
		client.TooManyWebhooksData{MaxWebhooks: max}, ErrConflict}
}

// validateWebhookURL checks a webhook URL as lsps5.set_webhook does, for
// the registration's webhook_url too, and before every notification:
//
//   - at most 1024 characters, all printable ASCII (55:145-151: an IRI is
//     converted to a URI by the client): 500 too_long, 501 url_parse_error;
//   - an absolute URL with a host, without user info (RFC 7230 2.7.1 forbids
//     it in http(s) URIs; LDK accepts it) or fragment (never sent): 501;
//   - https (55:153, 245-246), or http to a loopback host, which asynclsp
//     also allows for tests and a demo on one machine (as the registration
//     always has): 502 unsupported_protocol otherwise.
func validateWebhookURL(s string) error {
	if len(s) > maxWebhookURL {
		return errWebhookTooLong
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errURLParse
		}
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return errURLParse
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errUnsupportedProtocol
}

// appName decodes an app_name param. Its limit counts the bytes as sent,
// escapes included and the quotes not (55:125-128), which is never fewer
// than those of the decoded UTF-8 that LDK counts.
//
// A null is no string: it is refused, not taken for the name "".
func appName(raw json.RawMessage) (string, error) {
	var name *string
	if raw == nil {
		return "", lsps0.Errorf(lsps0.CodeInvalidParams, "missing param app_name")
	}
	if err := json.Unmarshal(raw, &name); err != nil || name == nil {
		return "", lsps0.Errorf(lsps0.CodeInvalidParams, "param app_name: want a JSON string")
	}
	if len(bytes.TrimSpace(raw))-2 > maxAppName {
		return "", errAppNameTooLong
	}
	return *name, nil
}

// RegisterLSPS registers the role's methods on s: lsps5.set_webhook,
// lsps5.list_webhooks and lsps5.remove_webhook (protocol 5 in
// lsps0.list_protocols), and asynclsp's own (see lsps_asynclsp.go), listed
// under no number. New registers them on Config.LSPS; call it only for
// another server.
func (r *Role) RegisterLSPS(s *lsps0.Server) {
	s.Handle(5, client.MethodSetWebhook, r.lspsCall(r.lspsSetWebhook))
	s.Handle(5, client.MethodListWebhooks, r.lspsCall(r.lspsListWebhooks))
	s.Handle(5, client.MethodRemoveWebhook, r.lspsCall(r.lspsRemoveWebhook))
	r.registerAsynclsp(s)
}

// viaHTTP marks the context of a request that came to POST /v1/lsps0, from
// a wallet backend: the receiver's node did not come online for it.
type viaHTTP struct{}

// lspsCall wraps a method: a request over BOLT8 means the receiver's node
// is online, which resets its notification cooldowns (55:636-637); errors
// are mapped to LSPS0's (lspsError).
func (r *Role) lspsCall(h lsps0.Handler) lsps0.Handler {
	return func(ctx context.Context, peer onionmsg.NodeKey, params json.RawMessage) (any, error) {
		if ctx.Value(viaHTTP{}) == nil {
			if err := r.PeerOnline(ctx, peer); err != nil {
				r.log.Warn("cannot reset notification cooldowns", "receiver", peer, "err", err)
			}
		}
		res, err := h(ctx, peer, params)
		if err != nil {
			return nil, r.lspsError(peer, err)
		}
		return res, nil
	}
}

// PeerOnline tells the role that the receiver's node came online: it
// connected, or made an LSPS0 request. Its notification cooldowns start
// afresh (55:636-637). The daemon calls it on lnd's peer-online events.
func (r *Role) PeerOnline(ctx context.Context, peer onionmsg.NodeKey) error {
	// A read first: most calls find nothing to reset, and a read costs no
	// commit.
	if ok, err := r.store.HasNotified(ctx, vertex(peer)); err != nil || !ok {
		return err
	}
	var had bool
	err := r.store.Update(ctx, func(tx *holdstore.Tx) (err error) {
		had, err = tx.ResetNotified(vertex(peer))
		return err
	})
	if had {
		r.log.Debug("notification cooldowns reset: the receiver is online", "receiver", peer)
	}
	return err
}

// setWebhookParams are lsps5.set_webhook's params as they come: app_name
// raw, for its limit.
type setWebhookParams struct {
	AppName json.RawMessage `json:"app_name"`
	Webhook *string         `json:"webhook"`
}

func (r *Role) lspsSetWebhook(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p setWebhookParams
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	app, err := appName(p.AppName)
	if err != nil {
		return nil, err
	}
	if p.Webhook == nil {
		return nil, lsps0.Errorf(lsps0.CodeInvalidParams, "missing param webhook")
	}
	return r.setWebhook(ctx, who, app, *p.Webhook)
}

// setWebhook is lsps5.set_webhook: the receiver's webhook under app set to
// url, added or replaced (55:178-186), stored before the answer (55:190-191).
// A receiver not registered yet is registered, without a token. A new or
// changed webhook owes lsps5.webhook_registered, which Run sends to it
// before anything else (55:227-237).
func (r *Role) setWebhook(ctx context.Context, who onionmsg.NodeKey, app, url string) (*client.SetWebhookResult, error) {
	if err := validateWebhookURL(url); err != nil {
		return nil, err
	}
	var set holdstore.WebhookSet
	err := r.store.Update(ctx, func(tx *holdstore.Tx) (err error) {
		set, err = r.setWebhookTx(tx, who, app, url)
		return err
	})
	var tooMany *lsps5Error
	switch {
	case errors.As(err, &tooMany):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: set webhook: %w", ErrUnavailable, err)
	}
	if !set.NoChange {
		r.log.Info("webhook set", "receiver", who, "webhooks", set.Webhooks)
		r.kick() // webhook_registered is owed
	}
	return &client.SetWebhookResult{NumWebhooks: set.Webhooks,
		MaxWebhooks: r.opts.Webhook.Max, NoChange: set.NoChange}, nil
}

// setWebhookTx sets a validated webhook in tx, registering the receiver
// without a token if it is not yet: lsps5.set_webhook's, and the HTTP
// registration's webhook_url (app DefaultAppName, in the registration's
// transaction).
func (r *Role) setWebhookTx(tx *holdstore.Tx, who onionmsg.NodeKey, app, url string) (holdstore.WebhookSet, error) {
	if _, err := tx.EnsureReceiver(vertex(who)); err != nil {
		return holdstore.WebhookSet{}, err
	}
	set, err := tx.SetWebhook(vertex(who), app, url, r.opts.Webhook.Max)
	if errors.Is(err, holdstore.ErrTooManyWebhooks) {
		return set, errTooManyWebhooks(r.opts.Webhook.Max)
	}
	return set, err
}

func (r *Role) lspsListWebhooks(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	// 55:255-257: no params.
	if err := lsps0.DecodeParams(params, &struct{}{}); err != nil {
		return nil, err
	}
	hooks, err := r.store.Webhooks(ctx, vertex(who))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	res := &client.ListWebhooksResult{AppNames: make([]string, 0, len(hooks)),
		MaxWebhooks: r.opts.Webhook.Max}
	for _, h := range hooks {
		res.AppNames = append(res.AppNames, h.AppName)
	}
	return res, nil
}

type removeWebhookParams struct {
	AppName json.RawMessage `json:"app_name"`
}

func (r *Role) lspsRemoveWebhook(ctx context.Context, who onionmsg.NodeKey, params json.RawMessage) (any, error) {
	var p removeWebhookParams
	if err := lsps0.DecodeParams(params, &p); err != nil {
		return nil, err
	}
	app, err := appName(p.AppName)
	if errors.Is(err, errAppNameTooLong) {
		// No webhook has so long a name (55:284-285).
		return nil, errAppNameNotFound
	}
	if err != nil {
		return nil, err
	}
	err = r.store.Update(ctx, func(tx *holdstore.Tx) error {
		return tx.RemoveWebhook(vertex(who), app)
	})
	switch {
	case errors.Is(err, holdstore.ErrNoWebhook):
		return nil, errAppNameNotFound
	case err != nil:
		return nil, fmt.Errorf("%w: remove webhook: %w", ErrUnavailable, err)
	}
	r.log.Info("webhook removed", "receiver", who)
	return struct{}{}, nil
}
