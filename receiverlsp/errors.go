package receiverlsp

import (
	"errors"
	"net/http"

	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// The errors of the role's API, one per answer code. Every error a method
// returns to a receiver wraps exactly one of them, with a message fit to
// show it; anything else is internal and its detail stays in the log.
var (
	// ErrInvalid: malformed input, a signature that does not verify, an
	// expired challenge or release. Nothing changed.
	ErrInvalid = errors.New("invalid request")

	// ErrUnauthorized: no bearer token, or not a valid one.
	ErrUnauthorized = errors.New("unauthorized")

	// ErrForbidden: the token's receiver may not do this (a release for
	// another receiver).
	ErrForbidden = errors.New("forbidden")

	// ErrNotFound: no such mailbox item (of this receiver).
	ErrNotFound = errors.New("not found")

	// ErrConflict: the request collides with what is stored: a challenge
	// answered before, a release that does not match its item, an item no
	// longer pending.
	ErrConflict = errors.New("conflict")

	// ErrTooLarge: a body over the route's limit, or too many invoices.
	ErrTooLarge = errors.New("payload too large")

	// ErrUnavailable: the bus or the database failed; retrying is safe.
	ErrUnavailable = errors.New("unavailable")
)

// apiError maps an error to its answer code, HTTP status and message.
func apiError(err error) (code string, status int, msg string) {
	for _, m := range []struct {
		err    error
		code   string
		status int
	}{
		{ErrInvalid, client.CodeInvalidRequest, http.StatusBadRequest},
		{ErrUnauthorized, client.CodeUnauthorized, http.StatusUnauthorized},
		{ErrForbidden, client.CodeForbidden, http.StatusForbidden},
		{ErrNotFound, client.CodeNotFound, http.StatusNotFound},
		{ErrConflict, client.CodeConflict, http.StatusConflict},
		{ErrTooLarge, client.CodePayloadTooLarge, http.StatusRequestEntityTooLarge},
	} {
		if errors.Is(err, m.err) {
			return m.code, m.status, err.Error()
		}
	}
	if errors.Is(err, ErrUnavailable) {
		return client.CodeUnavailable, http.StatusServiceUnavailable,
			"temporarily unavailable; retry"
	}
	return client.CodeInternal, http.StatusInternalServerError, "internal error"
}
