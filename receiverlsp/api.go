package receiverlsp

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// openAPI documents the API; a test keeps it in step with routes.
//
//go:embed openapi.json
var openAPI []byte

// Body limits per route.
const (
	smallBody  = 8 << 10
	uploadBody = 4 << 20
)

// endpoint is one route of the API. openapi.json documents each; a test
// keeps the two in step.
type endpoint struct {
	method  string
	pattern string
	limit   int64 // body size limit; 0 for no body
	auth    bool  // needs a bearer token
	handle  func(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error
}

func (r *Role) routes() []endpoint {
	return []endpoint{
		{"POST", "/v1/register/challenge", smallBody, false, r.postChallenge},
		{"POST", "/v1/register", smallBody, false, r.postRegister},
		{"POST", "/v1/invoices", uploadBody, true, r.postInvoices},
		{"GET", "/v1/invoices", 0, true, r.getInvoices},
		{"GET", "/v1/mailbox", 0, true, r.getMailbox},
		{"GET", "/v1/mailbox/{sender_lsp}/{hold_id}", 0, true, r.getItem},
		{"POST", "/v1/releases", smallBody, true, r.postRelease},
		{"POST", "/v1/lsps0", lsps0.MaxMessageSize, true, r.postLSPS0},
		{"GET", "/v1/openapi.json", 0, false, getOpenAPI},
	}
}

// Handler serves the receiver API (see openapi.json). Every error answer
// is a JSON ErrorResponse with one of a few codes.
func (r *Role) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range r.routes() {
		mux.Handle(rt.method+" "+rt.pattern, r.serve(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		r.fail(w, req, fmt.Errorf("%w: no route %s %s", ErrNotFound,
			req.Method, req.URL.Path))
	})
	return mux
}

func (r *Role) serve(rt endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if rt.limit > 0 {
			req.Body = http.MaxBytesReader(w, req.Body, rt.limit)
		}
		var who onionmsg.NodeKey
		if rt.auth {
			token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			if !ok {
				r.fail(w, req, fmt.Errorf("%w: send Authorization: Bearer "+
					"<token>", ErrUnauthorized))
				return
			}
			var err error
			if who, err = r.authenticate(req.Context(), token); err != nil {
				r.fail(w, req, err)
				return
			}
		}
		if err := rt.handle(w, req, who); err != nil {
			r.fail(w, req, err)
		}
	})
}

// fail writes err as the API's JSON error; detail of internal errors goes
// to the log only.
func (r *Role) fail(w http.ResponseWriter, req *http.Request, err error) {
	code, status, msg := apiError(err)
	if status >= 500 {
		r.log.Error("request failed", "method", req.Method, "path",
			req.URL.Path, "err", err)
	} else {
		r.log.Debug("request refused", "method", req.Method, "path",
			req.URL.Path, "code", code, "err", err)
	}
	httpjson.Write(w, status, client.ErrorResponse{Error: client.ErrorBody{Code: code, Message: msg}})
}

// decode reads one JSON object into v: unknown fields, trailing data and
// bodies over the route's limit are refused.
func decode(req *http.Request, v any) error {
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, tooBig.Limit)
	case err != nil:
		return fmt.Errorf("%w: body: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, tooBig.Limit)
		}
		return fmt.Errorf("%w: body: data after the JSON object", ErrInvalid)
	}
	return nil
}

func (r *Role) postChallenge(w http.ResponseWriter, req *http.Request, _ onionmsg.NodeKey) error {
	var body client.ChallengeRequest
	if err := decode(req, &body); err != nil {
		return err
	}
	if body.NodeKey.IsZero() {
		return fmt.Errorf("%w: node_key is required", ErrInvalid)
	}
	c := r.newChallenge(body.NodeKey)
	httpjson.Write(w, http.StatusOK, client.ChallengeResponse{
		Challenge: hex.EncodeToString(c.Bytes()),
		LNMessage: string(c.LNMessage()), ExpiresAt: c.ExpiresAt,
	})
	return nil
}

func (r *Role) postRegister(w http.ResponseWriter, req *http.Request, _ onionmsg.NodeKey) error {
	var body client.RegisterRequest
	if err := decode(req, &body); err != nil {
		return err
	}
	if body.NodeKey.IsZero() {
		return fmt.Errorf("%w: node_key is required", ErrInvalid)
	}
	reg, err := r.registerReceiver(req.Context(), &body)
	if err != nil {
		return err
	}
	r.kick() // a new webhook owes webhook_registered
	httpjson.Write(w, http.StatusOK, client.RegisterResponse{
		NodeKey: reg.Receiver, Token: reg.Token, WebhookURL: body.WebhookURL,
	})
	return nil
}

func (r *Role) postInvoices(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	var body client.UploadRequest
	if err := decode(req, &body); err != nil {
		return err
	}
	resp, err := r.upload(req.Context(), who, body.Invoices)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, resp)
	return nil
}

func (r *Role) getInvoices(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	c, err := r.counts(req.Context(), who)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, c)
	return nil
}

func (r *Role) getMailbox(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	items, err := r.mailbox(req.Context(), who)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, client.MailboxResponse{Items: items})
	return nil
}

func (r *Role) getItem(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	sender, err := onionmsg.ParseNodeKey(req.PathValue("sender_lsp"))
	if err != nil {
		return fmt.Errorf("%w: sender_lsp: %v", ErrInvalid, err)
	}
	hold, err := onionmsg.ParseHoldID(req.PathValue("hold_id"))
	if err != nil {
		return fmt.Errorf("%w: hold_id: %v", ErrInvalid, err)
	}
	q := req.URL.Query()
	var (
		wait  time.Duration
		after uint64
	)
	if s := q.Get("wait"); s != "" {
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			return fmt.Errorf("%w: wait must be a duration such as 30s", ErrInvalid)
		}
	}
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			return fmt.Errorf("%w: after must be a version number", ErrInvalid)
		}
	}
	it, err := r.item(req.Context(), who, sender, hold, after, wait)
	if errors.Is(err, context.Canceled) {
		return nil // the client went away
	}
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, it)
	return nil
}

func (r *Role) postRelease(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	var body client.ReleaseRequest
	if err := decode(req, &body); err != nil {
		return err
	}
	raw, err := hex.DecodeString(body.Release)
	if err != nil || len(raw) == 0 {
		return fmt.Errorf("%w: release must be the hex of its TLV bytes", ErrInvalid)
	}
	it, err := r.release(req.Context(), who, raw)
	if err != nil {
		return err
	}
	httpjson.Write(w, http.StatusAccepted, it)
	return nil
}

// postLSPS0 answers one LSPS0 request (a JSON-RPC 2.0 object, as over
// BOLT8) from the token's receiver: the same methods, params, results and
// error codes as over lnd's custom messages, for a wallet backend that does
// not hold the node's connection. lsps0's HTTPHandler answers: 200 with the
// JSON-RPC response, whatever its result.
func (r *Role) postLSPS0(w http.ResponseWriter, req *http.Request, who onionmsg.NodeKey) error {
	// The body is read here, within the route's limit, so that one over it
	// is refused as every route refuses one (413 payload_too_large), not
	// with lsps0's JSON-RPC error, which a client of this API cannot read.
	body, err := io.ReadAll(req.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, tooBig.Limit)
	case err != nil:
		return fmt.Errorf("%w: body: %v", ErrInvalid, err) // the client is gone
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	// Not the node coming online: its cooldowns stay.
	req = req.WithContext(context.WithValue(req.Context(), viaHTTP{}, true))
	r.lsps.HTTPHandler(func(*http.Request) (onionmsg.NodeKey, error) {
		return who, nil
	}).ServeHTTP(w, req)
	return nil
}

func getOpenAPI(w http.ResponseWriter, _ *http.Request, _ onionmsg.NodeKey) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPI)
	return err
}
