package senderlsp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
)

// paymentJSON is a payment as the API shows it. Secrets (the release
// secret, the preimage) and the receiver's own invoice stay inside.
type paymentJSON struct {
	ID       string           `json:"id"`
	State    holdstore.State  `json:"state"`
	Reason   holdstore.Reason `json:"reason"`
	Settled  bool             `json:"settled"`
	Canceled bool             `json:"canceled"`
	// Resolved: lnd has done what the final state asks (the hold invoice
	// is settled or canceled) and the receiver LSP was told.
	Resolved bool `json:"resolved"`

	PaymentHash string `json:"payment_hash"`
	AmountMsat  uint64 `json:"amount_msat"`
	FeeMsat     uint64 `json:"fee_msat"`

	// HoldInvoice is what the sender pays: AmountMsat + FeeMsat.
	HoldInvoice    string `json:"hold_invoice"`
	HoldAmountMsat uint64 `json:"hold_amount_msat"`

	ReceiverKey string                `json:"receiver_key"`
	ReceiverLSP string                `json:"receiver_lsp"`
	RetryPolicy holdstore.RetryPolicy `json:"retry_policy"`
	Owner       string                `json:"owner"`

	IncomingExpiry uint32    `json:"incoming_expiry"`
	DeadlineHeight uint32    `json:"deadline_height"`
	DeadlineTime   time.Time `json:"deadline_time"`
	Attempts       int       `json:"attempts"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toPaymentJSON(h *holdstore.Hold) *paymentJSON {
	return &paymentJSON{
		ID: h.ID.String(), State: h.State, Reason: h.Reason,
		Settled:  h.State == holdstore.StateSettled,
		Canceled: h.State == holdstore.StateCanceled,
		Resolved: h.Resolved,

		PaymentHash: h.PaymentHash.String(),
		AmountMsat:  uint64(h.AmountMsat), FeeMsat: uint64(h.FeeMsat),
		HoldInvoice: h.HoldInvoice, HoldAmountMsat: uint64(h.HoldAmountMsat()),

		ReceiverKey: h.ReceiverKey.String(), ReceiverLSP: h.ReceiverLSP.String(),
		RetryPolicy: h.RetryPolicy, Owner: h.Owner,

		IncomingExpiry: h.IncomingExpiry, DeadlineHeight: h.DeadlineHeight,
		DeadlineTime: h.DeadlineTime.UTC(), Attempts: h.Attempts,
		CreatedAt: h.CreatedAt.UTC(), UpdatedAt: h.UpdatedAt.UTC(),
	}
}

// createPaymentJSON is the body of POST /v1/payments.
type createPaymentJSON struct {
	ReceiverKey    string `json:"receiver_key"`
	ReceiverLSP    string `json:"receiver_lsp"`
	AmountMsat     uint64 `json:"amount_msat"`
	MaxHoldSeconds uint64 `json:"max_hold_seconds"`
	RetryPolicy    string `json:"retry_policy"`
	SenderNode     string `json:"sender_node"`
}

// pageJSON is the answer of GET /v1/payments.
type pageJSON struct {
	Payments   []*paymentJSON `json:"payments"`
	NextCursor string         `json:"next_cursor"`
}

// eventJSON is one hold transition on the event stream.
type eventJSON struct {
	Seq       uint64           `json:"seq"`
	PaymentID string           `json:"payment_id"`
	From      holdstore.State  `json:"from"`
	State     holdstore.State  `json:"state"`
	Reason    holdstore.Reason `json:"reason"`
	Final     bool             `json:"final"`
	At        time.Time        `json:"at"`
}

func toEventJSON(ev *holdstore.Event) *eventJSON {
	return &eventJSON{
		Seq: ev.Seq, PaymentID: ev.HoldID.String(), From: ev.From,
		State: ev.To, Reason: ev.Reason, Final: ev.Final, At: ev.At.UTC(),
	}
}

// decodeBody reads a JSON body strictly: at most MaxBodyBytes, one object,
// no unknown fields, nothing after it.
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > a.cfg.MaxBodyBytes {
		return &http.MaxBytesError{Limit: a.cfg.MaxBodyBytes}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err == nil {
			return apiErr(codeInvalidRequest, "the body holds more than one JSON value")
		}
		return jsonError(err)
	}
	return nil
}

// jsonError turns a decoding error into one the client can act on.
func jsonError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.Is(err, io.EOF):
		return apiErr(codeInvalidRequest, "the body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apiErr(codeInvalidRequest, "the body is cut short: malformed JSON")
	case errors.As(err, &syntax):
		return apiErr(codeInvalidRequest, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.As(err, &typ):
		if typ.Field != "" {
			return apiErr(codeInvalidRequest, fmt.Sprintf("field %s: want a %s", typ.Field, jsonKind(typ.Type.Kind().String())))
		}
		return apiErr(codeInvalidRequest, "the body must be a JSON object")
	}
	// DisallowUnknownFields reports `json: unknown field "x"`; the text is
	// the client's own input.
	return apiErr(codeInvalidRequest, err.Error())
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "uint64", "uint32", "int", "int64":
		return "non-negative integer"
	}
	return goKind
}
