package onionmsg

import (
	"context"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/tlv"
)

// EnvelopeVersion is the only envelope version this code speaks.
const EnvelopeVersion uint8 = 1

// Envelope record types (doc.go has the table).
const (
	envVersion   tlv.Type = 0
	envType      tlv.Type = 2
	envID        tlv.Type = 4
	envFrom      tlv.Type = 6
	envTo        tlv.Type = 8
	envSentAt    tlv.Type = 10
	envPayload   tlv.Type = 12
	envSignature tlv.Type = 240
)

// Envelope carries one message over the bus between two LSPs, signed by the
// sending LSP's node key (TagEnvelope over SignedBytes). It is how a receiver
// LSP knows a held_htlc_available really comes from that sender LSP, and how
// each side knows a message was meant for it.
type Envelope struct {
	// Version is EnvelopeVersion. It is always the first record, so a
	// later version may change everything after it.
	Version uint8

	// Type is the payload's message type.
	Type MsgType

	// ID names this envelope, for deduplication on the bus.
	ID MsgID

	// From is the sending LSP's node key, the key that signs.
	From NodeKey

	// To is the node key of the LSP it is for.
	To NodeKey

	// SentAt is when it was sealed (whole unix seconds on the wire).
	SentAt time.Time

	// Payload is the message's TLV stream, at most MaxPayloadSize bytes.
	Payload []byte

	// Signature is From's BIP-340 signature under TagEnvelope over
	// SignedBytes.
	Signature [64]byte

	// ExtraRecords holds unknown odd records. They are signed too. Nil if
	// there are none.
	ExtraRecords tlv.TypeMap
}

// NewEnvelope encodes m and seals it in an envelope from one LSP to
// another, signed by s, which must hold the key from.
func NewEnvelope(ctx context.Context, s Signer, from, to NodeKey, id MsgID,
	sentAt time.Time, m Message) (*Envelope, error) {

	payload, err := m.Encode()
	if err != nil {
		return nil, err
	}
	e := &Envelope{
		Version: EnvelopeVersion,
		Type:    m.MsgType(),
		ID:      id,
		From:    from,
		To:      to,
		SentAt:  time.Unix(sentAt.Unix(), 0).UTC(),
		Payload: payload,
	}
	if err := e.Sign(ctx, s); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Envelope) records(withSig bool) []tlv.Record {
	recs := []tlv.Record{
		uintRecord(envVersion, &e.Version),
		uintRecord(envType, &e.Type),
		fixedRecord(envID, &e.ID),
		fixedRecord(envFrom, &e.From),
		fixedRecord(envTo, &e.To),
		uintRecord(envSentAt, &e.SentAt),
		bytesRecord(envPayload, &e.Payload, MaxPayloadSize),
	}
	if withSig {
		recs = append(recs, fixedRecord(envSignature, &e.Signature))
	}
	return recs
}

func (e *Envelope) validate() error {
	switch {
	case e.Version != EnvelopeVersion:
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, e.Version)
	case !knownType(e.Type):
		return fmt.Errorf("%w: %d", ErrUnknownMessageType, uint64(e.Type))
	case len(e.Payload) > MaxPayloadSize:
		return fmt.Errorf("%w: payload of %d bytes", ErrWrongLength,
			len(e.Payload))
	}
	if err := validNodeKey("from", e.From); err != nil {
		return err
	}
	if err := validNodeKey("to", e.To); err != nil {
		return err
	}
	return validTime("sent at", e.SentAt)
}

// SignedBytes returns the exact bytes the sending LSP signs: the envelope's
// TLV stream without the signature record (type 240), unknown odd records
// included. The signature is BIP-340 over TaggedDigest(TagEnvelope,
// SignedBytes()).
func (e *Envelope) SignedBytes() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return encodeTLV(e.records(false), e.ExtraRecords, MaxEnvelopeSize)
}

// Sign signs the envelope with s, which must hold the key e.From, and sets
// Signature.
func (e *Envelope) Sign(ctx context.Context, s Signer) error {
	msg, err := e.SignedBytes()
	if err != nil {
		return err
	}
	sig, err := s.SignTagged(ctx, []byte(TagEnvelope), msg)
	if err != nil {
		return fmt.Errorf("sign envelope: %w", err)
	}
	e.Signature = sig
	return nil
}

// Encode returns the envelope's TLV stream, signature included.
func (e *Envelope) Encode() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	return encodeTLV(e.records(true), e.ExtraRecords, MaxEnvelopeSize)
}

// DecodeEnvelope strictly decodes an envelope. Every record is required, the
// version must be EnvelopeVersion and the type a known one. The payload is
// not decoded (see Open) and the signature not verified (see
// VerifyEnvelope).
func DecodeEnvelope(b []byte) (*Envelope, error) {
	// The version record comes first (type 0, length 1): answer a later
	// version as such, whatever else it changed.
	if len(b) >= 3 && b[0] == byte(envVersion) && b[1] == 1 &&
		b[2] != EnvelopeVersion {

		return nil, fmt.Errorf("decode envelope: %w: %d",
			ErrUnsupportedVersion, b[2])
	}
	e := new(Envelope)
	parsed, extra, err := decodeTLV(b, MaxEnvelopeSize, e.records(true)...)
	if err == nil {
		err = require(parsed, envVersion, envType, envID, envFrom, envTo,
			envSentAt, envPayload, envSignature)
	}
	if err == nil {
		err = e.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	e.ExtraRecords = extra
	return e, nil
}

// EnvelopeExpect is what the receiving LSP knows of an envelope before it
// trusts it.
type EnvelopeExpect struct {
	// From is the LSP it must come from: the one named in the bus
	// subject it arrived on (which NATS permissions tie to the
	// publisher), or the one a request went to.
	From NodeKey

	// To is this LSP's own node key.
	To NodeKey
}

// VerifyEnvelope checks that e comes from want.From, is for want.To, is not
// dated more than maxSkew after now, and carries a valid signature by From.
// It fails with ErrUnsupportedVersion, ErrMisdirected, ErrWrongKey,
// ErrFromFuture, ErrInvalidSignatureEncoding or ErrBadSignature.
//
// It sets no bound on age: durable delivery may bring an envelope long after
// it was sent, and each message's own handling is idempotent (a hold id is
// acted on once). A negative maxSkew counts as zero.
func VerifyEnvelope(e *Envelope, want EnvelopeExpect, now time.Time,
	maxSkew time.Duration) error {

	maxSkew = max(maxSkew, 0)
	switch {
	case e.Version != EnvelopeVersion:
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, e.Version)
	case e.To != want.To:
		return fmt.Errorf("%w: envelope for %v, we are %v",
			ErrMisdirected, e.To, want.To)
	case e.From != want.From:
		return fmt.Errorf("%w: envelope from %v, want %v", ErrWrongKey,
			e.From, want.From)
	case e.SentAt.After(now.Add(maxSkew)):
		return fmt.Errorf("%w: sent %v, now %v", ErrFromFuture, e.SentAt,
			now)
	}
	msg, err := e.SignedBytes()
	if err != nil {
		return err
	}
	if err := VerifyTagged([]byte(TagEnvelope), msg, e.Signature,
		e.From); err != nil {

		return fmt.Errorf("envelope: %w", err)
	}
	return nil
}
