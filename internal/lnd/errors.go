package lnd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors returned by the adapter. Each is wrapped with the name of the
// operation and lnd's own error, so errors.Is works and the log keeps the
// detail. doc.go lists which lnd error maps to which sentinel.
var (
	// ErrClosed is returned once Close has been called.
	ErrClosed = errors.New("lnd client closed")

	// ErrUnavailable means lnd could not be reached, or was still starting
	// or shutting down, for longer than Config.RetryFor.
	ErrUnavailable = errors.New("lnd unavailable")

	// ErrIncompatible means the lnd we connected to is too old, runs on
	// another network, or lacks a build tag one of our RPCs needs.
	ErrIncompatible = errors.New("incompatible lnd")

	// ErrInvalidRequest means the adapter refused a request before sending
	// it (for example a missing payment hash or an empty signing tag).
	ErrInvalidRequest = errors.New("invalid request")

	// ErrInvoiceNotFound means lnd has no invoice for the payment hash.
	ErrInvoiceNotFound = errors.New("invoice not found")

	// ErrInvoiceExists means an invoice for the payment hash already
	// exists (AddHoldInvoice, AddInvoice).
	ErrInvoiceExists = errors.New("invoice already exists")

	// ErrInvoiceSettled means the invoice is settled, so it cannot be
	// canceled any more (CancelInvoice).
	ErrInvoiceSettled = errors.New("invoice already settled")

	// ErrInvoiceCanceled means the invoice is canceled, so it cannot be
	// settled any more (SettleInvoice).
	ErrInvoiceCanceled = errors.New("invoice already canceled")

	// ErrInvoiceOpen means the invoice has no accepted HTLCs yet, so it
	// cannot be settled (SettleInvoice).
	ErrInvoiceOpen = errors.New("invoice still open")

	// ErrPaymentExists means lnd already has a payment for this hash that
	// is in flight or succeeded (SendPayment). Track it with TrackPayment
	// instead of sending again.
	ErrPaymentExists = errors.New("payment already in flight or succeeded")

	// ErrPaymentNotFound means lnd never initiated a payment for this hash
	// (TrackPayment).
	ErrPaymentNotFound = errors.New("payment not found")

	// ErrPeerNotConnected means the peer is not connected to the node
	// (SendCustomMessage).
	ErrPeerNotConnected = errors.New("peer not connected")
)

// messageErrors maps substrings of lnd's error messages (v0.21) to our
// sentinels. lnd returns most of them with codes.Unknown, so the text is all
// there is to go on. Order matters: the first match wins.
var messageErrors = []struct {
	text string
	err  error
}{
	{"unable to locate invoice", ErrInvoiceNotFound},
	{"there are no existing invoices", ErrInvoiceNotFound},
	{"invoice with payment hash already exists", ErrInvoiceExists},
	{"invoice with payemnt addr already exists", ErrInvoiceExists},
	{"invoice already settled", ErrInvoiceSettled},
	{"invoice already canceled", ErrInvoiceCanceled},
	{"invoice still open", ErrInvoiceOpen},
	{"payment isn't initiated", ErrPaymentNotFound},
	{"invoice is already paid", ErrPaymentExists},
	{"payment is in transition", ErrPaymentExists},
	{"payment already exists", ErrPaymentExists},
}

// transientMessages are parts of lnd's messages while it starts, unlocks or
// shuts down: the call may succeed if repeated a little later.
var transientMessages = []string{
	"waiting to start, RPC services not available",
	"in the process of starting up",
	"still in the process of starting",
	"wallet locked, unlock it",
	"shutting down",
	"system interrupt",
	"server is stopped",
	"exiting",
	// routerrpc's SubscribeHtlcEvents when lnd's HTLC notifier stops.
	"htlc event subscription terminated",
}

// mapError turns an error of a call to lnd into one of our sentinels where
// one applies, wrapped with the operation name and lnd's error. Errors of
// the caller's own context are returned wrapped but unmapped.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrClosed) {

		return fmt.Errorf("lnd %s: %w", op, err)
	}

	if sentinel := classify(err); sentinel != nil {
		return fmt.Errorf("lnd %s: %w: %w", op, sentinel, err)
	}

	return fmt.Errorf("lnd %s: %w", op, err)
}

// classify returns the sentinel for an lnd error, or nil if none applies.
func classify(err error) error {
	st, _ := status.FromError(err)
	msg := st.Message()
	if msg == "" {
		msg = err.Error()
	}
	for _, m := range messageErrors {
		if strings.Contains(msg, m.text) {
			return m.err
		}
	}

	switch st.Code() {
	case codes.AlreadyExists:
		return ErrPaymentExists

	case codes.Unavailable:
		return ErrUnavailable
	}

	if isTransient(err) {
		return ErrUnavailable
	}

	return nil
}

// isTransient reports whether err says lnd is unreachable, starting or
// shutting down: the same call may work once lnd is back.
func isTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) {

		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable:
		return true

	// The server canceled or aborted the call (it is going down); our
	// own cancellation is checked by the caller before this.
	case codes.Canceled, codes.Aborted:
		return true
	}
	for _, m := range transientMessages {
		if strings.Contains(st.Message(), m) {
			return true
		}
	}

	return false
}
