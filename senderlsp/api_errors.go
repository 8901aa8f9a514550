package senderlsp

import (
	"errors"
	"net/http"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
)

// The API's error codes: a small fixed set a wallet backend can switch on.
// openapi.json lists the same; a test holds the two together.
const (
	codeInvalidRequest         = "invalid_request"
	codeUnauthorized           = "unauthorized"
	codeForbidden              = "forbidden"
	codeNotFound               = "not_found"
	codeMethodNotAllowed       = "method_not_allowed"
	codeNotCancelable          = "not_cancelable"
	codeRequestTooLarge        = "request_too_large"
	codeReceiverUnknown        = "receiver_unknown"
	codeNoInvoice              = "no_invoice"
	codeAmountOutOfRange       = "amount_out_of_range"
	codeBadInvoice             = "bad_invoice"
	codeInternal               = "internal"
	codeInsufficientLiquidity  = "insufficient_liquidity"
	codeNoHTLCSlots            = "no_htlc_slots"
	codeReceiverLSPUnreachable = "receiver_lsp_unreachable"
	codeUnavailable            = "unavailable"
)

// apiCodes maps every code to its HTTP status.
var apiCodes = map[string]int{
	codeInvalidRequest:         http.StatusBadRequest,
	codeUnauthorized:           http.StatusUnauthorized,
	codeForbidden:              http.StatusForbidden,
	codeNotFound:               http.StatusNotFound,
	codeMethodNotAllowed:       http.StatusMethodNotAllowed,
	codeNotCancelable:          http.StatusConflict,
	codeRequestTooLarge:        http.StatusRequestEntityTooLarge,
	codeReceiverUnknown:        http.StatusUnprocessableEntity,
	codeNoInvoice:              http.StatusUnprocessableEntity,
	codeAmountOutOfRange:       http.StatusUnprocessableEntity,
	codeBadInvoice:             http.StatusUnprocessableEntity,
	codeInternal:               http.StatusInternalServerError,
	codeInsufficientLiquidity:  http.StatusServiceUnavailable,
	codeNoHTLCSlots:            http.StatusServiceUnavailable,
	codeReceiverLSPUnreachable: http.StatusServiceUnavailable,
	codeUnavailable:            http.StatusServiceUnavailable,
}

// apiError is an error as the client sees it. Its message is written for
// the client: never an internal detail.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func apiErr(code, message string) *apiError {
	return &apiError{Code: code, Message: message}
}

var (
	errMethodNotAllowed = apiErr(codeMethodNotAllowed, "method not allowed on this endpoint")
	errShuttingDown     = apiErr(codeUnavailable, "the sender LSP is shutting down")
	errNotFound         = apiErr(codeNotFound, "no such payment")
)

// publicError maps an error to what the client is told. Only errors that
// describe the client's own input keep their text; the rest get a fixed
// message per code.
func publicError(err error) *apiError {
	var ae *apiError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &tooLarge):
		return apiErr(codeRequestTooLarge, "the request body is too large")
	case errors.Is(err, ErrInvalidRequest):
		return apiErr(codeInvalidRequest, err.Error())
	case errors.Is(err, ErrNotFound), errors.Is(err, holdstore.ErrNotFound):
		return errNotFound
	case errors.Is(err, ErrNotCancelable):
		return apiErr(codeNotCancelable, "the payment cannot be canceled now: "+
			"it is settled, or its payment to the receiver may still succeed")
	case errors.Is(err, ErrUnknownReceiver):
		return apiErr(codeReceiverUnknown, "the receiver LSP does not know the receiver")
	case errors.Is(err, ErrNoInvoice):
		return apiErr(codeNoInvoice, "the receiver has no invoice left at its LSP")
	case errors.Is(err, ErrAmountOutOfRange):
		return apiErr(codeAmountOutOfRange, "the receiver has no invoice for this amount")
	case errors.Is(err, ErrBadInvoice):
		return apiErr(codeBadInvoice, "the receiver LSP's invoice is unusable")
	case errors.Is(err, ErrInsufficientLiquidity):
		return apiErr(codeInsufficientLiquidity, "the LSP has too little "+
			"outbound liquidity for this payment now")
	case errors.Is(err, ErrNoHTLCSlots):
		return apiErr(codeNoHTLCSlots, "too few HTLC slots are free for this payment now")
	case errors.Is(err, ErrReceiverLSPUnreachable):
		return apiErr(codeReceiverLSPUnreachable, "the receiver LSP did not answer")
	case errors.Is(err, ErrCreateUnfinished):
		return apiErr(codeUnavailable, "the payment is still being created "+
			"after a restart; try again with the same idempotency key")
	case errors.Is(err, ErrStopped), errors.Is(err, holdstore.ErrClosed):
		return errShuttingDown
	}
	return apiErr(codeInternal, "internal error; the LSP's log has the details")
}

// fail answers a request with err and logs it: server faults as errors,
// the client's as debug lines. hold is the payment's id, if known.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error, hold string) {
	pub := publicError(err)
	status := apiCodes[pub.Code]
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status,
		"code", pub.Code, "err", err}
	if hold != "" {
		attrs = append(attrs, "hold", hold)
	}
	switch {
	case abandoned(r, err):
		// The client went away; nobody reads the answer.
		a.log.Debug("request abandoned by the client", attrs...)
	case pub.Code == codeReceiverLSPUnreachable:
		// Not a fault of ours: lspOutages logs when a receiver LSP stops
		// answering and when it answers again; every refusal is counted.
		a.log.Debug("API request refused", attrs...)
	case errors.Is(err, ErrCreateUnfinished):
		// Not a failure: the hold's runner finishes the create (and
		// logs it); the wallet's retry gets it.
		a.log.Info("API request refused", attrs...)
	case status >= 500:
		a.log.Error("API request failed", attrs...)
	default:
		a.log.Debug("API request refused", attrs...)
	}
	writeError(w, pub)
}

func writeError(w http.ResponseWriter, e *apiError) {
	httpjson.Write(w, apiCodes[e.Code], struct {
		Error *apiError `json:"error"`
	}{e})
}
