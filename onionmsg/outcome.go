package onionmsg

import (
	"crypto/sha256"
	"fmt"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/tlv"
)

// MaxReasonLen is the longest reason code of a hold_outcome.
const MaxReasonLen = 64

// HoldStatus is what became of a hold, as told to the receiver LSP.
type HoldStatus uint8

// The hold_outcome statuses.
const (
	// StatusReleased: the release was accepted; the sender LSP is paying
	// the receiver.
	StatusReleased HoldStatus = 1

	// StatusSettled: the receiver was paid and the hold settled.
	StatusSettled HoldStatus = 2

	// StatusCanceled: the hold was canceled; the sender got its funds
	// back. Reason says why.
	StatusCanceled HoldStatus = 3

	// StatusRejected: a release was refused (forged, stale, misdirected
	// or for a hold that is not held); the hold itself is unchanged.
	StatusRejected HoldStatus = 4
)

// String names the status as the documentation does.
func (s HoldStatus) String() string {
	switch s {
	case StatusReleased:
		return "released"
	case StatusSettled:
		return "settled"
	case StatusCanceled:
		return "canceled"
	case StatusRejected:
		return "rejected"
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

// HoldOutcome is hold_outcome: the sender LSP tells the receiver LSP what
// became of a hold (and of the receiver's release), so it can tell the
// receiver.
type HoldOutcome struct {
	// HoldID names the hold.
	HoldID HoldID

	// PaymentHash is the hold's payment hash.
	PaymentHash lntypes.Hash

	// Status is what became of it.
	Status HoldStatus

	// Reason is a machine-readable reason code such as
	// "deadline_passed", at most MaxReasonLen printable ASCII bytes.
	// Optional; the sender LSP's reason codes are its own.
	Reason string

	// ReleaseDigest names the release the outcome concerns (ReleaseDigest
	// of its TLV bytes as relayed): the one refused, for rejected; the
	// one accepted, for released. Zero when the outcome names no release
	// (it is optional, and odd: a peer that predates it skips it).
	ReleaseDigest [32]byte

	// ExtraRecords holds unknown odd records. Nil if there are none.
	ExtraRecords tlv.TypeMap
}

// MsgType implements Message.
func (*HoldOutcome) MsgType() MsgType { return TypeHoldOutcome }

func (m *HoldOutcome) records(all bool) []tlv.Record {
	recs := []tlv.Record{
		fixedRecord(recHoldID, &m.HoldID),
		fixedRecord(recPaymentHash, &m.PaymentHash),
		uintRecord(recStatus, &m.Status),
	}
	if all || m.Reason != "" {
		recs = append(recs, stringRecord(recReason, &m.Reason,
			MaxReasonLen))
	}
	if all || m.ReleaseDigest != [32]byte{} {
		recs = append(recs, fixedRecord(recReleaseDigest,
			&m.ReleaseDigest))
	}
	return recs
}

func (m *HoldOutcome) validate() error {
	switch {
	case m.Status < StatusReleased || m.Status > StatusRejected:
		return fmt.Errorf("%w: status %d", ErrInvalidValue, m.Status)
	case len(m.Reason) > MaxReasonLen:
		return fmt.Errorf("%w: reason of %d bytes", ErrWrongLength,
			len(m.Reason))
	case !isPrintableASCII(m.Reason):
		return fmt.Errorf("%w: reason is not printable ASCII",
			ErrInvalidValue)
	}
	return nil
}

// Encode implements Message.
func (m *HoldOutcome) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode hold_outcome: %w", err)
	}
	return encodeTLV(m.records(false), m.ExtraRecords, MaxHoldOutcomeSize)
}

// DecodeHoldOutcome strictly decodes a hold_outcome. A reason record that is
// present must not be empty, nor a release_digest record all zero.
func DecodeHoldOutcome(b []byte) (*HoldOutcome, error) {
	m := new(HoldOutcome)
	parsed, extra, err := decodeTLV(b, MaxHoldOutcomeSize, m.records(true)...)
	if err == nil {
		err = require(parsed, recHoldID, recPaymentHash, recStatus)
	}
	if err == nil && has(parsed, recReason) && m.Reason == "" {
		err = fmt.Errorf("%w: empty reason record", ErrInvalidValue)
	}
	if err == nil && has(parsed, recReleaseDigest) && m.ReleaseDigest == [32]byte{} {
		err = fmt.Errorf("%w: zero release digest", ErrInvalidValue)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode hold_outcome: %w", err)
	}
	m.ExtraRecords = extra
	return m, nil
}

// ReleaseDigest is how a hold_outcome names a release: the SHA-256 of the
// release's TLV stream exactly as relayed (its signature record included).
// A decoded release re-encodes to the bytes it came from, so either side
// can compute it, whichever scheme signed it. The signature is included so
// that a refusal of a forgery over the same signed bytes never names the
// genuine release; and since a release carries an ln_signature only in its
// low-s form, no one can turn a genuine release into a second valid one
// with another digest.
func ReleaseDigest(release []byte) [32]byte {
	return sha256.Sum256(release)
}

// Digest returns ReleaseDigest of the release's encoding.
func (m *ReleaseHeldHTLC) Digest() ([32]byte, error) {
	b, err := m.Encode()
	if err != nil {
		return [32]byte{}, err
	}
	return ReleaseDigest(b), nil
}
