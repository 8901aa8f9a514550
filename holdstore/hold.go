package holdstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// ID identifies a hold: 16 random bytes, shown as 32 hex characters.
type ID [16]byte

// NewID returns a fresh random ID.
func NewID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return id
}

// ParseID reads the hex form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != hex.EncodedLen(len(id)) {
		return id, fmt.Errorf("%w: hold id must be %d hex characters",
			ErrInvalid, hex.EncodedLen(len(id)))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: hold id: %v", ErrInvalid, err)
	}
	return id, nil
}

// String is the hex form of the ID.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// RetryPolicy says how the sender LSP retries a failed outbound payment.
type RetryPolicy string

// The retry policies.
const (
	// RetryPatient retries in tiers, quick retries first and slower ones
	// after, while the block budget allows.
	RetryPatient RetryPolicy = "patient"

	// RetryFastFail makes one attempt.
	RetryFastFail RetryPolicy = "fast-fail"
)

// Valid reports whether p is a known policy.
func (p RetryPolicy) Valid() bool { return p == RetryPatient || p == RetryFastFail }

// Hold is one held payment, as stored.
type Hold struct {
	ID          ID
	PaymentHash lntypes.Hash

	// Owner is the wallet backend that asked for the payment; RequestKey
	// its optional idempotency key, unique per owner.
	Owner      string
	RequestKey string

	// AmountMsat is paid to the receiver; the hold invoice is for
	// AmountMsat + FeeMsat.
	AmountMsat lnwire.MilliSatoshi
	FeeMsat    lnwire.MilliSatoshi

	ReceiverKey           route.Vertex
	ReceiverLSP           route.Vertex
	ReceiverInvoice       string
	ReceiverInvoiceExpiry time.Time

	// ReceiverInvoiceAmountMsat is the receiver invoice's own amount, 0
	// when it is amountless (then AmountMsat is paid).
	ReceiverInvoiceAmountMsat lnwire.MilliSatoshi

	// HoldInvoice is the payment request handed to the sender; empty until
	// lnd has created it.
	HoldInvoice string
	CltvDelta   uint32
	RetryPolicy RetryPolicy

	// ReleaseSecret is sent to the receiver with held_htlc_available; a
	// release must carry it back.
	ReleaseSecret [32]byte

	// IncomingExpiry is the lowest expiry height of the accepted incoming
	// HTLCs, and DeadlineHeight the height by which the hold must be
	// canceled; both 0 until HELD.
	IncomingExpiry uint32
	DeadlineHeight uint32

	// DeadlineTime: the hold is canceled at this time if not released.
	DeadlineTime time.Time

	State  State
	Reason Reason

	// Attempts counts outbound payment attempts started.
	Attempts        int
	Preimage        *lntypes.Preimage
	OutboundFeeMsat lnwire.MilliSatoshi

	// Resolved: lnd has done what the final state asks. Every unresolved
	// hold is resumed at start-up.
	Resolved bool

	CreatedAt time.Time
	UpdatedAt time.Time
}

// HoldAmountMsat is the amount of the hold invoice.
func (h *Hold) HoldAmountMsat() lnwire.MilliSatoshi { return h.AmountMsat + h.FeeMsat }

func (h *Hold) validate() error {
	switch {
	case h.AmountMsat == 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	case h.ReceiverInvoice == "":
		return fmt.Errorf("%w: no receiver invoice", ErrInvalid)
	case !h.RetryPolicy.Valid():
		return fmt.Errorf("%w: retry policy %q", ErrInvalid, h.RetryPolicy)
	case h.DeadlineTime.IsZero():
		return fmt.Errorf("%w: no deadline time", ErrInvalid)
	case h.CltvDelta == 0:
		return fmt.Errorf("%w: no cltv delta", ErrInvalid)
	}
	return nil
}

// holdColumns is the column list every hold query selects, in scanHold's
// order.
const holdColumns = `id, payment_hash, owner, request_key, amount_msat,
	fee_msat, receiver_key, receiver_lsp, receiver_invoice,
	receiver_invoice_expiry, receiver_invoice_amount_msat, hold_invoice,
	cltv_delta, retry_policy,
	release_secret, incoming_expiry, deadline_height, deadline_time, state,
	failure_reason, attempts, preimage, outbound_fee_msat, resolved,
	created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanHold(row scanner) (*Hold, error) {
	var (
		h                                     Hold
		id, hash, rkey, rlsp, secret, preimg  []byte
		reqKey                                sql.NullString
		invExpiry, deadline, created, updated int64
		resolved                              int
	)
	err := row.Scan(&id, &hash, &h.Owner, &reqKey, &h.AmountMsat,
		&h.FeeMsat, &rkey, &rlsp, &h.ReceiverInvoice, &invExpiry,
		&h.ReceiverInvoiceAmountMsat, &h.HoldInvoice, &h.CltvDelta, &h.RetryPolicy, &secret,
		&h.IncomingExpiry, &h.DeadlineHeight, &deadline, &h.State,
		&h.Reason, &h.Attempts, &preimg, &h.OutboundFeeMsat, &resolved,
		&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	copy(h.ID[:], id)
	copy(h.PaymentHash[:], hash)
	copy(h.ReceiverKey[:], rkey)
	copy(h.ReceiverLSP[:], rlsp)
	copy(h.ReleaseSecret[:], secret)
	if len(preimg) == len(lntypes.Preimage{}) {
		p := lntypes.Preimage(preimg)
		h.Preimage = &p
	}
	h.RequestKey = reqKey.String
	h.ReceiverInvoiceExpiry = time.Unix(0, invExpiry)
	h.DeadlineTime = time.Unix(0, deadline)
	h.CreatedAt = time.Unix(0, created)
	h.UpdatedAt = time.Unix(0, updated)
	h.Resolved = resolved != 0
	return &h, nil
}

// Get returns the hold with the given id.
func (s *Store) Get(ctx context.Context, id ID) (*Hold, error) {
	row := s.db.QueryRowContext(ctx,
		"SELECT "+holdColumns+" FROM holds WHERE id = ?", id[:])
	h, err := scanHold(row)
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", id, err)
	}
	return h, nil
}

// GetByHash returns the hold for a payment hash.
func (s *Store) GetByHash(ctx context.Context, hash lntypes.Hash) (*Hold, error) {
	row := s.db.QueryRowContext(ctx,
		"SELECT "+holdColumns+" FROM holds WHERE payment_hash = ?", hash[:])
	h, err := scanHold(row)
	if err != nil {
		return nil, fmt.Errorf("hold with hash %s: %w", hash, err)
	}
	return h, nil
}

// GetByRequestKey returns the hold an owner created with an idempotency key.
func (s *Store) GetByRequestKey(ctx context.Context, owner, key string) (*Hold, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+holdColumns+
		" FROM holds WHERE owner = ? AND request_key = ?", owner, key)
	h, err := scanHold(row)
	if err != nil {
		return nil, fmt.Errorf("hold with request key %q: %w", key, err)
	}
	return h, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
