package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// The admin API's errors, one per answer code. A handler's error wraps one
// of them with a message fit for the operator; any other error is internal
// and its detail stays in the log.
var (
	errInvalidRequest = errors.New("invalid request")
	errUnauthorized   = errors.New("unauthorized")
	errForbidden      = errors.New("forbidden")
	errNotFound       = errors.New("not found")
	errNotAllowed     = errors.New("method not allowed")
	errTooLarge       = errors.New("request too large")
	errUnavailable    = errors.New("unavailable")
)

// adminCodes maps each error to its code and HTTP status. openapi.json
// lists the same codes; a test holds the two together.
var adminCodes = []struct {
	err    error
	code   adminclient.Code
	status int
}{
	{errInvalidRequest, adminclient.CodeInvalidRequest, http.StatusBadRequest},
	{errUnauthorized, adminclient.CodeUnauthorized, http.StatusUnauthorized},
	{errForbidden, adminclient.CodeForbidden, http.StatusForbidden},
	{errNotFound, adminclient.CodeNotFound, http.StatusNotFound},
	{errNotAllowed, adminclient.CodeMethodNotAllowed, http.StatusMethodNotAllowed},
	{errTooLarge, adminclient.CodeRequestTooLarge, http.StatusRequestEntityTooLarge},
	{errUnavailable, adminclient.CodeUnavailable, http.StatusServiceUnavailable},
}

// adminBodyLimit caps a request body: the largest is a token's name.
const adminBodyLimit = 4 << 10

// senderRole is what the admin API asks of the sender role
// (*senderlsp.Manager).
type senderRole interface {
	// Reannounce announces the HELD holds for a receiver LSP again and
	// returns how many.
	Reannounce(ctx context.Context, receiverLSP onionmsg.NodeKey) (int, error)
}

// adminAPI serves the operator's endpoints under /v1/admin: what the roles'
// own APIs do not show. Every request needs an admin token.
type adminAPI struct {
	store *holdstore.Store
	// sender is nil when the daemon does not run the sender role: its
	// endpoints then answer not_found, as its wallet API's paths do.
	sender senderRole
	info   adminclient.Info
	clock  clock.Clock
	log    *slog.Logger
	mux    *http.ServeMux
}

// adminRoute is one endpoint; openapi.json documents exactly these.
type adminRoute struct {
	method, pattern string
	handle          func(a *adminAPI, w http.ResponseWriter, r *http.Request, who *holdstore.Token) error
}

var adminRoutes = []adminRoute{
	{http.MethodGet, "/v1/admin/info", (*adminAPI).getInfo},
	{http.MethodPost, "/v1/admin/tokens", (*adminAPI).createToken},
	{http.MethodGet, "/v1/admin/tokens", (*adminAPI).listTokens},
	{http.MethodPost, "/v1/admin/tokens/{id}/revoke", (*adminAPI).revokeToken},
	{http.MethodGet, "/v1/admin/receivers", (*adminAPI).listReceivers},
	{http.MethodGet, "/v1/admin/mailbox", (*adminAPI).listMailbox},
	{http.MethodGet, "/v1/admin/stats", (*adminAPI).getStats},
	{http.MethodPost, "/v1/admin/sender/reannounce", (*adminAPI).reannounce},
}

// newAdminAPI serves the admin API over store; sender is nil without the
// sender role.
func newAdminAPI(store *holdstore.Store, sender senderRole, info adminclient.Info,
	clk clock.Clock, log *slog.Logger) *adminAPI {

	a := &adminAPI{store: store, sender: sender, info: info, clock: clk,
		log: log.With("component", "adminapi"), mux: http.NewServeMux()}
	allowed := map[string][]string{}
	for _, rt := range adminRoutes {
		a.mux.Handle(rt.method+" "+rt.pattern, a.authed(rt))
		allowed[rt.pattern] = append(allowed[rt.pattern], rt.method)
	}
	for pattern, methods := range allowed {
		allow := strings.Join(methods, ", ")
		a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			a.fail(w, r, fmt.Errorf("%w: %s %s", errNotAllowed, r.Method, r.URL.Path))
		})
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, fmt.Errorf("%w: no such endpoint %s", errNotFound, r.URL.Path))
	})
	return a
}

// ServeHTTP serves the admin API.
func (a *adminAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	a.mux.ServeHTTP(w, r)
}

// authed admits requests with an admin bearer token.
func (a *adminAPI) authed(rt adminRoute) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := a.authenticate(r)
		if err == nil {
			err = rt.handle(a, w, r, who)
		}
		if err != nil {
			a.fail(w, r, err)
		}
	})
}

func (a *adminAPI) authenticate(r *http.Request) (*holdstore.Token, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, fmt.Errorf("%w: send Authorization: Bearer <admin token>", errUnauthorized)
	}
	tok, err := a.store.AuthenticateToken(r.Context(), strings.TrimSpace(token))
	switch {
	case errors.Is(err, holdstore.ErrTokenInvalid), errors.Is(err, holdstore.ErrTokenRevoked):
		a.log.Info("admin API token refused", "remote", r.RemoteAddr, "err", err)
		return nil, fmt.Errorf("%w: the bearer token is invalid or revoked", errUnauthorized)
	case err != nil:
		return nil, err
	case tok.Role != holdstore.RoleAdmin:
		return nil, fmt.Errorf("%w: the admin API needs an admin token; %q is a %s token",
			errForbidden, tok.Name, tok.Role)
	}
	return tok, nil
}

// fail answers with err as the API's JSON error; an internal error's detail
// goes to the log only.
func (a *adminAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status, msg := adminclient.CodeInternal, http.StatusInternalServerError,
		"internal error; the daemon's log has the details"
	if errors.Is(err, holdstore.ErrClosed) {
		err = fmt.Errorf("%w: the daemon is stopping", errUnavailable)
	}
	for _, c := range adminCodes {
		if errors.Is(err, c.err) {
			code, status, msg = c.code, c.status, err.Error()
			break
		}
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="asynclsp admin"`)
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "err", err}
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		a.log.Debug("request abandoned by the client", attrs...)
	case status >= 500:
		a.log.Error("admin request failed", attrs...)
	default:
		a.log.Debug("admin request refused", attrs...)
	}
	var body adminclient.ErrorBody
	body.Error.Code, body.Error.Message = code, msg
	httpjson.Write(w, status, body)
}

// decodeBody reads one JSON object strictly: within adminBodyLimit, no
// unknown fields, nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, adminBodyLimit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything but the end of the body after the object is an error.
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err == nil {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: the body is over %d bytes", errTooLarge, tooBig.Limit)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the body is empty; a JSON object is required", errInvalidRequest)
	}
	return fmt.Errorf("%w: body: %v", errInvalidRequest, err)
}
