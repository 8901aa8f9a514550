package onionmsg

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/tlv"
)

// ReleaseMessagePrefix starts the text a receiver signs for an ln_signature
// release (ReleaseHeldHTLC.LNMessage). bLIP-50 (50:970-973) has LSPS specs
// make signed messages "include the string `LSPS` followed by the LSPS
// specification number, as well as a human-readable ASCII text warning not
// to sign the message manually"; asynclsp is no LSPS, so its prefix names
// the protocol and what is signed instead, then gives the warning. A
// verifier that asks a person to sign a text of its choosing can thus never
// obtain a release.
const ReleaseMessagePrefix = "asynclsp release: DO NOT SIGN THIS MESSAGE MANUALLY: "

// SigScheme is how a release is signed: a release carries exactly one
// signature, of one of the two schemes.
type SigScheme uint8

const (
	// SchemeBIP340 is Signature (record 240): BIP-340 Schnorr under
	// TagRelease over SignedBytes. lnd's signrpc makes it.
	SchemeBIP340 SigScheme = 1

	// SchemeLN is LNSignature (record 242): an ln_signature (bLIP-50)
	// over LNMessage. Every wallet's signmessage makes it: lnd's lnrpc,
	// CLN, LDK Node, the Breez SDK.
	SchemeLN SigScheme = 2
)

// String names the scheme for logs.
func (s SigScheme) String() string {
	switch s {
	case SchemeBIP340:
		return "bip340"
	case SchemeLN:
		return "ln_signature"
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

// ReleaseHeldHTLC is release_held_htlc (type 74): the receiver, back online,
// asks the sender LSP to pay it. It is signed by the receiver's node key,
// either BIP-340 (TagRelease over SignedBytes: Sign) or as an ln_signature
// (over LNMessage: SignLN), and relayed by the receiver LSP; the sender LSP
// checks it with VerifyRelease.
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

	// LNSignature is the receiver's ln_signature over LNMessage, its 65
	// bytes (header, r, s) with s low. SignLN and ReleaseFromLNMessage
	// fill it. Zero unless the release is signed this way (Scheme); a
	// release with it set has a zero Signature.
	LNSignature [65]byte

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

// Scheme says how the release is signed: SchemeLN if LNSignature is set,
// else SchemeBIP340 (an unsigned release counts as an unsigned BIP-340 one,
// its Signature all zero).
func (m *ReleaseHeldHTLC) Scheme() SigScheme {
	if m.LNSignature != ([65]byte{}) {
		return SchemeLN
	}
	return SchemeBIP340
}

// records returns the release's records, with the signature record of its
// scheme if withSig.
func (m *ReleaseHeldHTLC) records(withSig bool) []tlv.Record {
	recs := m.unsignedRecords()
	switch {
	case !withSig:
	case m.Scheme() == SchemeLN:
		recs = append(recs, fixedRecord(recLNSignature, &m.LNSignature))
	default:
		recs = append(recs, fixedRecord(recSignature, &m.Signature))
	}
	return recs
}

// decodeRecords returns every record a release may carry, both signature
// records among them, for the decoder.
func (m *ReleaseHeldHTLC) decodeRecords() []tlv.Record {
	return append(m.unsignedRecords(),
		fixedRecord(recSignature, &m.Signature),
		fixedRecord(recLNSignature, &m.LNSignature))
}

func (m *ReleaseHeldHTLC) unsignedRecords() []tlv.Record {
	return []tlv.Record{
		fixedRecord(recHoldID, &m.HoldID),
		fixedRecord(recPaymentHash, &m.PaymentHash),
		fixedRecord(recSenderLSPKey, &m.SenderLSPKey),
		fixedRecord(recReceiverKey, &m.ReceiverKey),
		fixedRecord(recReleaseSecret, &m.ReleaseSecret),
		uintRecord(recCreatedAt, &m.CreatedAt),
		uintRecord(recExpiresAt, &m.ExpiresAt),
	}
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

// validateSig checks the release carries one signature, encoded as the
// decoder requires.
func (m *ReleaseHeldHTLC) validateSig() error {
	if m.Scheme() != SchemeLN {
		return nil
	}
	if m.Signature != ([64]byte{}) {
		return fmt.Errorf("%w: a BIP-340 signature and an ln_signature",
			ErrConflictingRecords)
	}
	return checkLNSignature(&m.LNSignature, true)
}

// SignedBytes returns the exact bytes the receiver signs: the release's TLV
// stream without its signature record (type 240 or 242), unknown odd
// records included, in ascending type order. The signature is BIP-340 over
// TaggedDigest(TagRelease, SignedBytes()), or an ln_signature over
// LNMessage(), which spells these bytes out in hex.
func (m *ReleaseHeldHTLC) SignedBytes() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("release_held_htlc: %w", err)
	}
	return encodeTLV(m.records(false), m.ExtraRecords, MaxReleaseSize)
}

// LNMessage returns the text an ln_signature release signs, byte for byte:
// ReleaseMessagePrefix followed by the lowercase hex of SignedBytes. It is
// printable ASCII, so a wallet that signs text signs these very bytes.
func (m *ReleaseHeldHTLC) LNMessage() ([]byte, error) {
	b, err := m.SignedBytes()
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, len(ReleaseMessagePrefix)+hex.EncodedLen(len(b)))
	msg = append(msg, ReleaseMessagePrefix...)
	return hex.AppendEncode(msg, b), nil
}

// Sign signs the release with s, which must hold the receiver's node key,
// and sets Signature (clearing any LNSignature).
func (m *ReleaseHeldHTLC) Sign(ctx context.Context, s Signer) error {
	msg, err := m.SignedBytes()
	if err != nil {
		return err
	}
	sig, err := s.SignTagged(ctx, []byte(TagRelease), msg)
	if err != nil {
		return fmt.Errorf("sign release_held_htlc: %w", err)
	}
	m.Signature, m.LNSignature = sig, [65]byte{}
	return nil
}

// SignLN signs the release's LNMessage with s, which must hold the
// receiver's node key, and sets LNSignature (clearing any Signature), in
// its low-s form whichever form s returned. It does not check whose
// signature s made: VerifyRelease does.
func (m *ReleaseHeldHTLC) SignLN(ctx context.Context, s MessageSigner) error {
	msg, err := m.LNMessage()
	if err != nil {
		return err
	}
	sig, err := s.SignMessage(ctx, msg)
	if err != nil {
		return fmt.Errorf("sign release_held_htlc: %w", err)
	}
	raw, err := ParseLNSignature(sig)
	if err != nil {
		return fmt.Errorf("sign release_held_htlc: %w", err)
	}
	m.LNSignature, m.Signature = lowSLNSignature(raw), [64]byte{}
	return nil
}

// Encode implements Message. It encodes the signature of the release's
// Scheme as it is: call Sign or SignLN first.
func (m *ReleaseHeldHTLC) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode release_held_htlc: %w", err)
	}
	if err := m.validateSig(); err != nil {
		return nil, fmt.Errorf("encode release_held_htlc: %w", err)
	}
	return encodeTLV(m.records(true), m.ExtraRecords, MaxReleaseSize)
}

// DecodeReleaseHeldHTLC strictly decodes a release_held_htlc. Every record is
// required, and exactly one of the two signature records: 240 (BIP-340) or
// 242 (ln_signature); both is ErrConflictingRecords, neither
// ErrMissingRecord. It checks the keys are points and the signature is in
// range (an ln_signature low-s), but not that the signature verifies: that
// is VerifyRelease.
func DecodeReleaseHeldHTLC(b []byte) (*ReleaseHeldHTLC, error) {
	m := new(ReleaseHeldHTLC)
	parsed, extra, err := decodeTLV(b, MaxReleaseSize, m.decodeRecords()...)
	if err == nil {
		err = requireRelease(parsed)
	}
	if err == nil {
		bip340, ln := has(parsed, recSignature), has(parsed, recLNSignature)
		switch {
		case bip340 && ln:
			err = fmt.Errorf("%w: signature records %d and %d",
				ErrConflictingRecords, recSignature, recLNSignature)
		case !bip340 && !ln:
			err = fmt.Errorf("%w: a signature, type %d or %d",
				ErrMissingRecord, recSignature, recLNSignature)
		}
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

// requireRelease checks every record a release requires besides its
// signature was present.
func requireRelease(parsed tlv.TypeMap) error {
	return require(parsed, recHoldID, recPaymentHash, recSenderLSPKey,
		recReceiverKey, recReleaseSecret, recCreatedAt, recExpiresAt)
}

// ReleaseFromLNMessage rebuilds a release from the text a wallet signed
// (LNMessage) and its ln_signature, for wallets that sign text (CLN's
// signmessage, the Breez SDK's sign_message) and hand back the text they
// were given with the signature. msg must be ReleaseMessagePrefix followed
// by the lowercase hex of a release's TLV stream without a signature
// record, decoded as strictly as DecodeReleaseHeldHTLC decodes; sig is the
// ln_signature, as ParseLNSignature takes it, kept in its low-s form. It
// fails with ErrInvalidValue for a wrong prefix or hex that is not
// lowercase, with the decoder's errors for the stream, and with
// ErrBadLNSignature for the signature. It does not verify the signature:
// VerifyRelease does.
func ReleaseFromLNMessage(msg []byte, sig string) (*ReleaseHeldHTLC, error) {
	m, err := releaseFromLNMessage(msg, sig)
	if err != nil {
		return nil, fmt.Errorf("release_held_htlc from text: %w", err)
	}
	return m, nil
}

func releaseFromLNMessage(msg []byte, sig string) (*ReleaseHeldHTLC, error) {
	text, ok := bytes.CutPrefix(msg, []byte(ReleaseMessagePrefix))
	if !ok {
		return nil, fmt.Errorf("%w: the text does not start with %q",
			ErrInvalidValue, ReleaseMessagePrefix)
	}
	if len(text) > hex.EncodedLen(MaxReleaseSize) {
		return nil, fmt.Errorf("%w: %d hex digits, at most %d",
			ErrOversize, len(text), hex.EncodedLen(MaxReleaseSize))
	}
	if !isLowerHex(text) {
		return nil, fmt.Errorf("%w: the text after the prefix is not "+
			"lowercase hex of even length", ErrInvalidValue)
	}
	b := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(b, text); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	m := new(ReleaseHeldHTLC)
	parsed, extra, err := decodeTLV(b, MaxReleaseSize, m.unsignedRecords()...)
	if err == nil {
		err = requireRelease(parsed)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, err
	}
	m.ExtraRecords = extra
	raw, err := ParseLNSignature(sig)
	if err != nil {
		return nil, err
	}
	m.LNSignature = lowSLNSignature(raw)
	if _, err := m.Encode(); err != nil {
		return nil, err // over MaxReleaseSize with its signature
	}
	return m, nil
}

// isLowerHex reports whether b is lowercase hex of even length.
func isLowerHex(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
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
//   - ErrConflictingRecords: r carries both signatures.
//   - ErrInvalidSignatureEncoding, ErrBadSignature: the signature does not
//     verify under want.ReceiverKey. An ln_signature is checked by
//     recovering its key from LNMessage and comparing it with
//     want.ReceiverKey (ErrBadSignature wraps ErrBadLNSignature then). It
//     is never checked against a node graph (as lnd's VerifyMessage
//     would): a private receiver is in none.
//
// A negative maxSkew counts as zero. VerifyRelease does not know whether the
// hold has already been released: single use is the caller's to enforce, on
// the hold, never on signature bytes (an ECDSA signature has a twin).
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
	if err := r.validateSig(); err != nil {
		return fmt.Errorf("release_held_htlc: %w", err)
	}
	if r.Scheme() == SchemeLN {
		return verifyReleaseLN(r, want.ReceiverKey)
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

// verifyReleaseLN checks r's ln_signature (in range, low-s) recovers key
// over r's LNMessage.
func verifyReleaseLN(r *ReleaseHeldHTLC, key NodeKey) error {
	msg, err := r.LNMessage()
	if err != nil {
		return err
	}
	got, err := recoverLN(&r.LNSignature, msg)
	if err != nil {
		return fmt.Errorf("release_held_htlc: %w: %w", ErrBadSignature, err)
	}
	if got != key {
		return fmt.Errorf("release_held_htlc: %w: %w: signed by %v, want %v",
			ErrBadSignature, ErrBadLNSignature, got, key)
	}
	return nil
}
