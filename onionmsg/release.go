package onionmsg

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/tlv"
)

// ReleaseHeldHTLC is release_held_htlc (type 74): the receiver, back online,
// asks the sender LSP to pay it. It is signed by the receiver's node key
// (TagRelease over SignedBytes) and relayed by the receiver LSP; the sender
// LSP checks it with VerifyRelease.
type ReleaseHeldHTLC struct {
	// HoldID, PaymentHash, SenderLSPKey, ReceiverKey and ReleaseSecret
	// repeat the HeldHTLCAvailable being answered.
	HoldID        HoldID
	PaymentHash   lntypes.Hash
	SenderLSPKey  NodeKey
	ReceiverKey   NodeKey
	ReleaseSecret [32]byte

	// CreatedAt and ExpiresAt bound when the release may be used (whole
	// unix seconds on the wire).
	CreatedAt time.Time
	ExpiresAt time.Time

	// Signature is the receiver's BIP-340 signature under TagRelease over
	// SignedBytes. Sign fills it.
	Signature [64]byte

	// ExtraRecords holds unknown odd records. They are signed too. Nil if
	// there are none.
	ExtraRecords tlv.TypeMap
}

// NewRelease answers h: a release repeating its hold id, payment hash, keys
// and secret, created at now and valid for ttl. Sign it before sending.
func NewRelease(h *HeldHTLCAvailable, now time.Time,
	ttl time.Duration) *ReleaseHeldHTLC {

	created := time.Unix(now.Unix(), 0).UTC()
	return &ReleaseHeldHTLC{
		HoldID:        h.HoldID,
		PaymentHash:   h.PaymentHash,
		SenderLSPKey:  h.SenderLSPKey,
		ReceiverKey:   h.ReceiverKey,
		ReleaseSecret: h.ReleaseSecret,
		CreatedAt:     created,
		ExpiresAt:     created.Add(ttl.Truncate(time.Second)),
	}
}

// MsgType implements Message.
func (*ReleaseHeldHTLC) MsgType() MsgType { return TypeReleaseHeldHTLC }

func (m *ReleaseHeldHTLC) records(withSig bool) []tlv.Record {
	recs := []tlv.Record{
		fixedRecord(recHoldID, &m.HoldID),
		fixedRecord(recPaymentHash, &m.PaymentHash),
		fixedRecord(recSenderLSPKey, &m.SenderLSPKey),
		fixedRecord(recReceiverKey, &m.ReceiverKey),
		fixedRecord(recReleaseSecret, &m.ReleaseSecret),
		uintRecord(recCreatedAt, &m.CreatedAt),
		uintRecord(recExpiresAt, &m.ExpiresAt),
	}
	if withSig {
		recs = append(recs, fixedRecord(recSignature, &m.Signature))
	}
	return recs
}

func (m *ReleaseHeldHTLC) validate() error {
	if m.ReleaseSecret == [32]byte{} {
		return fmt.Errorf("%w: zero release secret", ErrInvalidValue)
	}
	if err := validNodeKey("sender LSP key", m.SenderLSPKey); err != nil {
		return err
	}
	if err := validNodeKey("receiver key", m.ReceiverKey); err != nil {
		return err
	}
	if err := validTime("created at", m.CreatedAt); err != nil {
		return err
	}
	return validTime("expires at", m.ExpiresAt)
}

// SignedBytes returns the exact bytes the receiver signs: the release's TLV
// stream without the signature record (type 240), unknown odd records
// included, in ascending type order. The signature is BIP-340 over
// TaggedDigest(TagRelease, SignedBytes()).
func (m *ReleaseHeldHTLC) SignedBytes() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("release_held_htlc: %w", err)
	}
	return encodeTLV(m.records(false), m.ExtraRecords, MaxReleaseSize)
}

// Sign signs the release with s, which must hold the receiver's node key,
// and sets Signature.
func (m *ReleaseHeldHTLC) Sign(ctx context.Context, s Signer) error {
	msg, err := m.SignedBytes()
	if err != nil {
		return err
	}
	sig, err := s.SignTagged(ctx, []byte(TagRelease), msg)
	if err != nil {
		return fmt.Errorf("sign release_held_htlc: %w", err)
	}
	m.Signature = sig
	return nil
}

// Encode implements Message. It encodes Signature as it is: call Sign first.
func (m *ReleaseHeldHTLC) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode release_held_htlc: %w", err)
	}
	return encodeTLV(m.records(true), m.ExtraRecords, MaxReleaseSize)
}

// DecodeReleaseHeldHTLC strictly decodes a release_held_htlc. Every record is
// required. It checks the keys are points and the signature is in range, but
// not that the signature verifies: that is VerifyRelease.
func DecodeReleaseHeldHTLC(b []byte) (*ReleaseHeldHTLC, error) {
	m := new(ReleaseHeldHTLC)
	parsed, extra, err := decodeTLV(b, MaxReleaseSize, m.records(true)...)
	if err == nil {
		err = require(parsed, recHoldID, recPaymentHash,
			recSenderLSPKey, recReceiverKey, recReleaseSecret,
			recCreatedAt, recExpiresAt, recSignature)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode release_held_htlc: %w", err)
	}
	m.ExtraRecords = extra
	return m, nil
}

// ReleaseExpect is what the sender LSP knows of a hold, against which a
// release is checked.
type ReleaseExpect struct {
	// HoldID, PaymentHash and ReleaseSecret are the hold's, as sent in
	// its HeldHTLCAvailable.
	HoldID        HoldID
	PaymentHash   lntypes.Hash
	ReleaseSecret [32]byte

	// SenderLSPKey is this sender LSP's own node key.
	SenderLSPKey NodeKey

	// ReceiverKey is the destination of the receiver's invoice the hold
	// was made for: the only key whose release counts.
	ReceiverKey NodeKey
}

// VerifyRelease checks that r releases the hold want describes, at now. It
// runs the cheap checks first and the signature last, and returns the first
// failure:
//
//   - ErrMisdirected: r names another sender LSP.
//   - ErrWrongKey: r names another receiver key than the invoice's
//     destination.
//   - ErrHoldMismatch, ErrHashMismatch: another hold or payment hash.
//   - ErrSecretMismatch: another release secret (compared in constant time).
//   - ErrInvalidLifetime: r expires before it is created.
//   - ErrFromFuture: r is created more than maxSkew after now.
//   - ErrExpired: now is at or past r's expiry plus maxSkew.
//   - ErrInvalidSignatureEncoding, ErrBadSignature: the signature does not
//     verify under want.ReceiverKey.
//
// A negative maxSkew counts as zero. VerifyRelease does not know whether the
// hold has already been released: single use is the caller's to enforce.
func VerifyRelease(r *ReleaseHeldHTLC, want ReleaseExpect, now time.Time,
	maxSkew time.Duration) error {

	maxSkew = max(maxSkew, 0)
	switch {
	case r.SenderLSPKey != want.SenderLSPKey:
		return fmt.Errorf("%w: release for sender LSP %v, we are %v",
			ErrMisdirected, r.SenderLSPKey, want.SenderLSPKey)
	case r.ReceiverKey != want.ReceiverKey:
		return fmt.Errorf("%w: release by %v, invoice destination is %v",
			ErrWrongKey, r.ReceiverKey, want.ReceiverKey)
	case r.HoldID != want.HoldID:
		return fmt.Errorf("%w: release for hold %v, want %v",
			ErrHoldMismatch, r.HoldID, want.HoldID)
	case r.PaymentHash != want.PaymentHash:
		return fmt.Errorf("%w: release for hash %v, want %v",
			ErrHashMismatch, r.PaymentHash, want.PaymentHash)
	case subtle.ConstantTimeCompare(r.ReleaseSecret[:],
		want.ReleaseSecret[:]) != 1:
		return ErrSecretMismatch
	case !r.ExpiresAt.After(r.CreatedAt):
		return fmt.Errorf("%w: created %v, expires %v",
			ErrInvalidLifetime, r.CreatedAt, r.ExpiresAt)
	case r.CreatedAt.After(now.Add(maxSkew)):
		return fmt.Errorf("%w: created %v, now %v", ErrFromFuture,
			r.CreatedAt, now)
	case !now.Before(r.ExpiresAt.Add(maxSkew)):
		return fmt.Errorf("%w: expired %v, now %v", ErrExpired,
			r.ExpiresAt, now)
	}
	msg, err := r.SignedBytes()
	if err != nil {
		return err
	}
	if err := VerifyTagged([]byte(TagRelease), msg, r.Signature,
		want.ReceiverKey); err != nil {

		return fmt.Errorf("release_held_htlc: %w", err)
	}
	return nil
}
