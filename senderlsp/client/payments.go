package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// State is where a payment is. SETTLED and CANCELED are final.
type State string

// The states of a payment.
const (
	StateCreated    State = "CREATED"
	StateHeld       State = "HELD"
	StateReleased   State = "RELEASED"
	StateForwarding State = "FORWARDING"
	StateSettled    State = "SETTLED"
	StateCanceled   State = "CANCELED"
)

// Final reports whether the state is SETTLED or CANCELED.
func (s State) Final() bool { return s == StateSettled || s == StateCanceled }

// Payment is an async payment: the hold of the sender's HTLC at the LSP.
type Payment struct {
	ID    string `json:"id"`
	State State  `json:"state"`

	// Reason says why a payment was canceled (or why its last outbound
	// attempt failed); empty otherwise.
	Reason   string `json:"reason"`
	Settled  bool   `json:"settled"`
	Canceled bool   `json:"canceled"`

	// Resolved is true once the LSP's lnd has done what the final state
	// asks: the hold invoice is settled, or canceled and the sender's
	// HTLC failed back; and the receiver's LSP was told (or given up on,
	// unreachable for an hour). Until then a
	// CANCELED payment's funds may still be held. It never turns false.
	Resolved bool `json:"resolved"`

	PaymentHash string `json:"payment_hash"`

	// AmountMsat reaches the receiver; the sender pays HoldAmountMsat,
	// which is AmountMsat + FeeMsat, to HoldInvoice.
	AmountMsat     uint64 `json:"amount_msat"`
	FeeMsat        uint64 `json:"fee_msat"`
	HoldInvoice    string `json:"hold_invoice"`
	HoldAmountMsat uint64 `json:"hold_amount_msat"`

	ReceiverKey string `json:"receiver_key"`
	ReceiverLSP string `json:"receiver_lsp"`
	RetryPolicy string `json:"retry_policy"`
	Owner       string `json:"owner"`

	// IncomingExpiry and DeadlineHeight are 0 until the payment is HELD.
	IncomingExpiry uint32    `json:"incoming_expiry"`
	DeadlineHeight uint32    `json:"deadline_height"`
	DeadlineTime   time.Time `json:"deadline_time"`
	Attempts       int       `json:"attempts"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// CreatePaymentRequest asks the LSP to pay an offline receiver.
type CreatePaymentRequest struct {
	// ReceiverKey and ReceiverLSP are node public keys in hex.
	ReceiverKey string
	ReceiverLSP string
	AmountMsat  uint64

	// MaxHold, if set, is the longest the payment may be held; whole
	// seconds, capped by the LSP's own limit.
	MaxHold time.Duration

	// RetryPolicy is "patient" (default) or "fast-fail".
	RetryPolicy string

	// SenderNode, if set, is the sender's node key: the LSP then checks
	// that the payment can come in over its channels.
	SenderNode string

	// IdempotencyKey, if set, makes the request safe to retry: a retry
	// with the same key returns the payment the first one made.
	IdempotencyKey string
}

type createBody struct {
	ReceiverKey    string `json:"receiver_key"`
	ReceiverLSP    string `json:"receiver_lsp"`
	AmountMsat     uint64 `json:"amount_msat"`
	MaxHoldSeconds uint64 `json:"max_hold_seconds,omitempty"`
	RetryPolicy    string `json:"retry_policy,omitempty"`
	SenderNode     string `json:"sender_node,omitempty"`
}

// CreatePayment asks the LSP for a payment and returns it with the hold
// invoice the sender pays. created is false when an earlier request with
// the same idempotency key made it.
func (c *Client) CreatePayment(ctx context.Context, req CreatePaymentRequest) (p *Payment, created bool, err error) {
	body := createBody{
		ReceiverKey: req.ReceiverKey, ReceiverLSP: req.ReceiverLSP,
		AmountMsat: req.AmountMsat, MaxHoldSeconds: uint64(req.MaxHold / time.Second),
		RetryPolicy: req.RetryPolicy, SenderNode: req.SenderNode,
	}
	header := http.Header{}
	if req.IdempotencyKey != "" {
		header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	p = new(Payment)
	status, err := c.do(ctx, http.MethodPost, "/v1/payments", nil, header, &body, p)
	if err != nil {
		return nil, false, err
	}
	return p, status == http.StatusCreated, nil
}

// Payment returns the payment with id.
func (c *Client) Payment(ctx context.Context, id string) (*Payment, error) {
	p := new(Payment)
	if _, err := c.do(ctx, http.MethodGet, "/v1/payments/"+url.PathEscape(id),
		nil, nil, nil, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Cancel cancels a payment that has not been paid out, and returns it. It
// fails with CodeNotCancelable once the payment is settled or while its
// payment to the receiver may still succeed.
func (c *Client) Cancel(ctx context.Context, id string) (*Payment, error) {
	p := new(Payment)
	if _, err := c.do(ctx, http.MethodPost, "/v1/payments/"+url.PathEscape(id)+"/cancel",
		nil, nil, nil, p); err != nil {
		return nil, err
	}
	return p, nil
}

// ListOptions filter a listing. Zero fields match everything.
type ListOptions struct {
	States        []State
	Receiver      string
	CreatedAfter  time.Time
	CreatedBefore time.Time

	// Owner lists one wallet's payments; for admin tokens only.
	Owner string

	// Limit is the page size, 1 to 1000; default 100.
	Limit int

	// Cursor continues from a previous page's NextCursor (with the same
	// filters).
	Cursor string
}

func (o *ListOptions) query() url.Values {
	q := url.Values{}
	for _, st := range o.States {
		q.Add("state", string(st))
	}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("receiver", o.Receiver)
	set("owner", o.Owner)
	set("cursor", o.Cursor)
	if !o.CreatedAfter.IsZero() {
		q.Set("created_after", o.CreatedAfter.Format(time.RFC3339Nano))
	}
	if !o.CreatedBefore.IsZero() {
		q.Set("created_before", o.CreatedBefore.Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Page is one page of a listing, newest first; NextCursor is empty on the
// last page.
type Page struct {
	Payments   []*Payment `json:"payments"`
	NextCursor string     `json:"next_cursor"`
}

// PaymentsPage returns one page of payments.
func (c *Client) PaymentsPage(ctx context.Context, opts ListOptions) (*Page, error) {
	page := new(Page)
	if _, err := c.do(ctx, http.MethodGet, "/v1/payments", opts.query(), nil,
		nil, page); err != nil {
		return nil, err
	}
	return page, nil
}

// Payments yields every payment matching opts, newest first, fetching
// pages as it goes. It stops at the first error, which it yields.
func (c *Client) Payments(ctx context.Context, opts ListOptions) iter.Seq2[*Payment, error] {
	return func(yield func(*Payment, error) bool) {
		for {
			page, err := c.PaymentsPage(ctx, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, p := range page.Payments {
				if !yield(p, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			opts.Cursor = page.NextCursor
		}
	}
}
