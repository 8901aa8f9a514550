package senderlsp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// PaymentRequest is a wallet backend's request to pay an offline receiver.
type PaymentRequest struct {
	// ReceiverKey is the receiver's node key; ReceiverLSP the node key of
	// the LSP that keeps its invoices.
	ReceiverKey onionmsg.NodeKey
	ReceiverLSP onionmsg.NodeKey

	// AmountMsat is what the receiver gets; the sender pays it plus the
	// LSP's fee.
	AmountMsat lnwire.MilliSatoshi

	// MaxHoldTime, if set, is the longest the sender wants to wait; at
	// most Config.MaxHoldTime.
	MaxHoldTime time.Duration

	// RetryPolicy for the outbound payment; default patient.
	RetryPolicy holdstore.RetryPolicy

	// SenderNode, if set, is the sender's node: its channels with us must
	// have free HTLC slots for the payment to come in.
	SenderNode *onionmsg.NodeKey

	// Owner is the wallet backend; RequestKey, if set, makes the request
	// idempotent: a retry with the same key returns the same payment.
	Owner      string
	RequestKey string
}

func (req *PaymentRequest) validate(cfg *Config) error {
	var zero onionmsg.NodeKey
	switch {
	case req.ReceiverKey == zero || req.ReceiverLSP == zero:
		return fmt.Errorf("%w: receiver and receiver LSP keys are required", ErrInvalidRequest)
	case req.AmountMsat == 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalidRequest)
	case req.AmountMsat > cfg.MaxAmountMsat:
		return fmt.Errorf("%w: amount %d msat is above the limit of %d msat",
			ErrInvalidRequest, req.AmountMsat, cfg.MaxAmountMsat)
	case req.MaxHoldTime < 0:
		return fmt.Errorf("%w: negative max hold time", ErrInvalidRequest)
	case req.RetryPolicy != "" && !req.RetryPolicy.Valid():
		return fmt.Errorf("%w: retry policy %q (want %q or %q)", ErrInvalidRequest,
			req.RetryPolicy, holdstore.RetryPatient, holdstore.RetryFastFail)
	case len(req.RequestKey) > 128:
		return fmt.Errorf("%w: request key longer than 128 bytes", ErrInvalidRequest)
	}
	if _, err := onionmsg.NewNodeKey(req.ReceiverKey[:]); err != nil {
		return fmt.Errorf("%w: receiver key: %v", ErrInvalidRequest, err)
	}
	if _, err := onionmsg.NewNodeKey(req.ReceiverLSP[:]); err != nil {
		return fmt.Errorf("%w: receiver LSP key: %v", ErrInvalidRequest, err)
	}
	return nil
}

// CreatePayment gets an invoice of the receiver from its LSP, records a hold
// on its payment hash and creates the hold invoice the sender pays. The hold
// is written before the hold invoice exists, so a crash in between leaves a
// hold that recovery cancels, never an invoice nobody watches.
func (m *Manager) CreatePayment(ctx context.Context, req PaymentRequest) (*holdstore.Hold, error) {
	select {
	case <-m.running:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: still resuming holds: %v", ErrStopped, ctx.Err())
	}
	cfg := &m.cfg
	if err := req.validate(cfg); err != nil {
		return nil, err
	}
	if req.RetryPolicy == "" {
		req.RetryPolicy = holdstore.RetryPatient
	}
	if req.RequestKey != "" {
		h, err := m.store.GetByRequestKey(ctx, req.Owner, req.RequestKey)
		if err == nil {
			return h, createUnfinished(h)
		}
		if !errors.Is(err, holdstore.ErrNotFound) {
			return nil, err
		}
	}
	if err := m.checkCapacity(ctx, &req); err != nil {
		return nil, err
	}

	id := holdID(&req)
	now := m.clock.Now()
	payReq, invoice, err := m.receiverInvoice(ctx, id, &req, now)
	if err != nil {
		return nil, err
	}
	maxHold := cfg.MaxHoldTime
	if req.MaxHoldTime > 0 {
		maxHold = min(maxHold, req.MaxHoldTime)
	}
	h := &holdstore.Hold{
		ID: id, PaymentHash: payReq.Hash,
		Owner: req.Owner, RequestKey: req.RequestKey,
		AmountMsat: req.AmountMsat, FeeMsat: cfg.Fee(req.AmountMsat),
		ReceiverKey: route.Vertex(req.ReceiverKey), ReceiverLSP: route.Vertex(req.ReceiverLSP),
		ReceiverInvoice: invoice, ReceiverInvoiceExpiry: payReq.ExpiresAt(),
		ReceiverInvoiceAmountMsat: payReq.AmountMsat,
		CltvDelta:                 cfg.HoldCltvDelta,
		RetryPolicy:               req.RetryPolicy,
		DeadlineTime: minTime(payReq.ExpiresAt().Add(-cfg.InvoiceExpiryMargin),
			now.Add(maxHold)),
	}
	if _, err := rand.Read(h.ReleaseSecret[:]); err != nil {
		return nil, err
	}
	if _, err := m.store.Create(ctx, h); err != nil {
		if errors.Is(err, holdstore.ErrDuplicate) && req.RequestKey != "" {
			// A concurrent retry with the same key won.
			return m.store.GetByRequestKey(ctx, req.Owner, req.RequestKey)
		}
		if errors.Is(err, holdstore.ErrDuplicate) {
			return nil, fmt.Errorf("%w: its payment hash is already held", ErrBadInvoice)
		}
		return nil, err
	}

	added, err := m.lnd.AddHoldInvoice(ctx, holdInvoiceRequest(h, *cfg))
	if err == nil {
		h.HoldInvoice = added.PaymentRequest
		err = m.store.SetHoldInvoice(ctx, h.ID, added.PaymentRequest)
	}
	if err != nil {
		// The runner cancels whatever lnd may have made.
		m.log.Error("creating the hold invoice failed", "hold", h.ID.String(), "err", err)
		_, cerr := m.store.Apply(ctx, holdstore.Transition{ID: h.ID,
			From: holdstore.StateCreated, To: holdstore.StateCanceled,
			Reason: holdstore.ReasonInternal})
		h.State = holdstore.StateCanceled
		m.startRunner(h, nil)
		return nil, errors.Join(fmt.Errorf("hold invoice: %w", err), cerr)
	}
	m.startRunner(h, nil)
	m.log.Info("payment created", "hold", h.ID.String(), "amount_msat",
		h.AmountMsat, "receiver", req.ReceiverKey.String())
	return h, nil
}

// createUnfinished refuses to hand out a hold whose create a crash cut
// short: recorded, but not its hold invoice. The sender could not pay it;
// its runner takes the invoice from lnd, or cancels the hold if lnd never
// made one, and a retry then gets the payment as it is.
func createUnfinished(h *holdstore.Hold) error {
	if h.State == holdstore.StateCreated && h.HoldInvoice == "" {
		return fmt.Errorf("%w: hold %s has no hold invoice recorded yet",
			ErrCreateUnfinished, h.ID)
	}
	return nil
}

// holdInvoiceRequest is the hold invoice of h: the receiver's payment hash,
// the amount plus the fee, and the long CLTV delta.
func holdInvoiceRequest(h *holdstore.Hold, cfg Config) lnd.HoldInvoiceRequest {
	return lnd.HoldInvoiceRequest{
		Hash: h.PaymentHash, ValueMsat: h.HoldAmountMsat(),
		Memo:   fmt.Sprintf("asynclsp %s", h.ID),
		Expiry: cfg.HoldInvoiceExpiry, CltvExpiry: uint64(cfg.HoldCltvDelta),
	}
}

// holdID is a new payment's id. With an idempotency key it is derived from
// the owner and the key, so every retry of one payment asks the receiver
// LSP with the same hold id, and it answers with the invoice it already
// reserved: a reply lost in a NATS failover does not burn another invoice.
func holdID(req *PaymentRequest) holdstore.ID {
	if req.RequestKey == "" {
		return holdstore.NewID()
	}
	h := sha256.New()
	h.Write([]byte("asynclsp hold id\x00"))
	h.Write([]byte(req.Owner))
	h.Write([]byte{0})
	h.Write([]byte(req.RequestKey))
	var id holdstore.ID
	copy(id[:], h.Sum(nil))
	return id
}

// receiverInvoice asks the receiver LSP for an invoice of the receiver and
// checks it: payee, amount, and life left.
func (m *Manager) receiverInvoice(ctx context.Context, id holdstore.ID,
	req *PaymentRequest, now time.Time) (lnd.PayReq, string, error) {

	rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	answer, err := m.net.Request(rctx, req.ReceiverLSP, &onionmsg.InvoiceRequest{
		HoldID: onionmsg.HoldID(id), ReceiverKey: req.ReceiverKey,
		Amount: req.AmountMsat, MinExpiry: now.Add(m.cfg.MinInvoiceLife),
	})
	if err != nil {
		if errors.Is(err, bus.ErrRejected) {
			return lnd.PayReq{}, "", fmt.Errorf("%w: it refused the request", ErrReceiverLSPUnreachable)
		}
		return lnd.PayReq{}, "", fmt.Errorf("%w: %v", ErrReceiverLSPUnreachable, err)
	}
	reply, ok := answer.(*onionmsg.InvoiceReply)
	if !ok || reply.HoldID != onionmsg.HoldID(id) {
		return lnd.PayReq{}, "", fmt.Errorf("%w: unexpected answer %T", ErrReceiverLSPUnreachable, answer)
	}
	switch reply.ErrorCode {
	case 0:
	case onionmsg.ReplyUnknownReceiver:
		return lnd.PayReq{}, "", ErrUnknownReceiver
	case onionmsg.ReplyNoInvoicesLeft:
		return lnd.PayReq{}, "", ErrNoInvoice
	case onionmsg.ReplyAmountOutOfRange:
		return lnd.PayReq{}, "", ErrAmountOutOfRange
	default:
		return lnd.PayReq{}, "", fmt.Errorf("%w: error code %d: %s",
			ErrReceiverLSPUnreachable, reply.ErrorCode, reply.ErrorMessage)
	}

	pr, err := m.lnd.DecodePayReq(ctx, reply.Invoice)
	switch {
	case err != nil:
		return pr, "", fmt.Errorf("%w: %v", ErrBadInvoice, err)
	case pr.Destination != route.Vertex(req.ReceiverKey):
		return pr, "", fmt.Errorf("%w: it pays %s, not the receiver", ErrBadInvoice, pr.Destination)
	case pr.AmountMsat != 0 && pr.AmountMsat != req.AmountMsat:
		return pr, "", fmt.Errorf("%w: it asks %d msat, not %d", ErrBadInvoice, pr.AmountMsat, req.AmountMsat)
	case pr.ExpiresAt().Before(now.Add(m.cfg.MinInvoiceLife)):
		return pr, "", fmt.Errorf("%w: it expires at %v, too soon", ErrBadInvoice, pr.ExpiresAt())
	}
	return pr, reply.Invoice, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
