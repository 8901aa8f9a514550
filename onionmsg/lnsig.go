package onionmsg

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/tv42/zbase32"
)

// The ln_signature scheme (bLIP-50, "LSPS0.ln_signature"): a recoverable
// ECDSA signature by a node key over
//
//	SHA256(SHA256("Lightning Signed Message:" || msg))
//
// as 65 bytes (a header byte 31..34 for a compressed key, then r and s),
// written in zbase32. It is what lnd's lnrpc SignMessage, CLN's
// signmessage, LDK's util::message_signing::sign, LDK Node's sign_message and
// the Breez SDK's sign_message make, so every wallet can sign it.
//
// ECDSA signatures are malleable: never key single use on their bytes.

// LNMessagePrefix is prepended to every message before hashing.
const LNMessagePrefix = "Lightning Signed Message:"

// ErrBadLNSignature: an ln_signature that is not zbase32 of 65 bytes, does
// not recover a key, or recovers another key than the one expected.
var ErrBadLNSignature = errors.New("bad ln_signature")

// MessageSigner signs msg with a node key as an ln_signature. lnd's lnrpc
// SignMessage does exactly that with its node key. Every message asynclsp
// has signed this way is printable ASCII (see ReleaseHeldHTLC.LNMessage and
// RegisterLNMessage), so a wallet whose signmessage takes text (CLN, the
// Breez SDK) signs the very same bytes: pass string(msg).
type MessageSigner interface {
	// SignMessage returns the zbase32 ln_signature of msg.
	SignMessage(ctx context.Context, msg []byte) (string, error)
}

// RegisterMessagePrefix starts the text a receiver signs to register with
// an ln_signature (RegisterLNMessage): like ReleaseMessagePrefix, it names
// what is signed and warns not to sign it by hand (50:970-973). It differs
// from ReleaseMessagePrefix, so a registration never passes for a release.
const RegisterMessagePrefix = "asynclsp register: DO NOT SIGN THIS MESSAGE MANUALLY: "

// RegisterLNMessage returns the text a receiver signs as an ln_signature to
// answer a registration challenge (the bytes the receiver LSP issued):
// RegisterMessagePrefix followed by the lowercase hex of challenge.
func RegisterLNMessage(challenge []byte) []byte {
	msg := make([]byte, 0, len(RegisterMessagePrefix)+hex.EncodedLen(len(challenge)))
	msg = append(msg, RegisterMessagePrefix...)
	return hex.AppendEncode(msg, challenge)
}

// LNMessageDigest is the digest an ln_signature signs.
func LNMessageDigest(msg []byte) [32]byte {
	b := make([]byte, 0, len(LNMessagePrefix)+len(msg))
	b = append(append(b, LNMessagePrefix...), msg...)
	return chainhash.DoubleHashH(b)
}

// SignMessage implements MessageSigner: a compact recoverable signature
// for the compressed key, deterministic (RFC 6979).
func (s *PrivKeySigner) SignMessage(ctx context.Context, msg []byte) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	digest := LNMessageDigest(msg)
	sig := ecdsa.SignCompact(s.key, digest[:], true)
	return zbase32.EncodeToString(sig), nil
}

// LNSignatureLen is the length of an ln_signature in zbase32: 104
// characters for its 65 bytes (520 bits, so no padding bits).
const LNSignatureLen = 104

// ParseLNSignature decodes an ln_signature's zbase32 into its 65 bytes. It
// takes the form every signer writes and nothing else: exactly
// LNSignatureLen characters of the lowercase zbase32 alphabet, like lnd.
// (LDK's decoder also folds uppercase letters; no signer emits them, and one
// spelling per signature is simpler to reason about.) It checks the bytes'
// ranges but not whose signature it is: see RecoverLNSignature.
func ParseLNSignature(sig string) ([65]byte, error) {
	var raw [65]byte
	if len(sig) != LNSignatureLen {
		return raw, fmt.Errorf("%w: %d characters, want %d",
			ErrBadLNSignature, len(sig), LNSignatureLen)
	}
	if strings.ToLower(sig) != sig {
		return raw, fmt.Errorf("%w: uppercase: zbase32 is lowercase",
			ErrBadLNSignature)
	}
	b, err := zbase32.DecodeString(sig)
	if err != nil || len(b) != len(raw) {
		return raw, fmt.Errorf("%w: not zbase32", ErrBadLNSignature)
	}
	copy(raw[:], b)
	if err := checkLNSignature(&raw, false); err != nil {
		return raw, fmt.Errorf("%w: %w", ErrBadLNSignature, err)
	}
	return raw, nil
}

// EncodeLNSignature writes the 65 bytes of an ln_signature in zbase32.
func EncodeLNSignature(raw [65]byte) string {
	return zbase32.EncodeToString(raw[:])
}

// RecoverLNSignature returns the node key that made sig over msg. Like
// every bLIP-50 verifier it takes a signature whose s is high as well as
// its low-s twin (ECDSA's one malleation: both recover the same key).
func RecoverLNSignature(msg []byte, sig string) (NodeKey, error) {
	raw, err := ParseLNSignature(sig)
	if err != nil {
		return NodeKey{}, err
	}
	return recoverLN(&raw, msg)
}

// VerifyLNSignature checks that sig is key's ln_signature over msg.
func VerifyLNSignature(msg []byte, sig string, key NodeKey) error {
	got, err := RecoverLNSignature(msg, sig)
	if err != nil {
		return err
	}
	if got != key {
		return fmt.Errorf("%w: signed by %v, want %v", ErrBadLNSignature, got, key)
	}
	return nil
}

// recoverLN recovers the key that made the 65-byte ln_signature raw over
// msg.
func recoverLN(raw *[65]byte, msg []byte) (NodeKey, error) {
	digest := LNMessageDigest(msg)
	pub, compressed, err := ecdsa.RecoverCompact(raw[:], digest[:])
	if err != nil {
		return NodeKey{}, fmt.Errorf("%w: %v", ErrBadLNSignature, err)
	}
	if !compressed {
		return NodeKey{}, fmt.Errorf("%w: signature for an uncompressed key",
			ErrBadLNSignature)
	}
	return NodeKeyFromPubKey(pub), nil
}

// The header byte of a compact signature for a compressed key: 27 + 4 plus
// the recovery code (bit 0: R's y is odd; bit 1: R's x overflowed n).
const (
	lnHeaderMin = 31
	lnHeaderMax = 34
)

// checkLNSignature checks the ranges of a 65-byte ln_signature: a header for
// a compressed key (31..34), and r and s in [1, n-1]; with lowS, s at most
// n/2 as well, the one form of the two ECDSA allows (BIP 62, BIP 146). It
// fails with ErrInvalidSignatureEncoding.
func checkLNSignature(raw *[65]byte, lowS bool) error {
	if h := raw[0]; h < lnHeaderMin || h > lnHeaderMax {
		return fmt.Errorf("%w: ln_signature header %d, want %d..%d "+
			"(a compressed key)", ErrInvalidSignatureEncoding, h,
			lnHeaderMin, lnHeaderMax)
	}
	var r, s btcec.ModNScalar
	if r.SetByteSlice(raw[1:33]) || r.IsZero() {
		return fmt.Errorf("%w: ln_signature r is not in [1, n-1]",
			ErrInvalidSignatureEncoding)
	}
	if s.SetByteSlice(raw[33:]) || s.IsZero() {
		return fmt.Errorf("%w: ln_signature s is not in [1, n-1]",
			ErrInvalidSignatureEncoding)
	}
	if lowS && s.IsOverHalfOrder() {
		return fmt.Errorf("%w: ln_signature s is over n/2 (write n-s)",
			ErrInvalidSignatureEncoding)
	}
	return nil
}

// lowSLNSignature returns raw in its low-s form: the same signature with s
// replaced by n-s and the y parity of R flipped, if s is over n/2. Both
// forms recover the same key over the same message; a release carries only
// the low-s one, so its bytes are the only encoding of what its receiver
// signed.
func lowSLNSignature(raw [65]byte) [65]byte {
	var s btcec.ModNScalar
	s.SetByteSlice(raw[33:])
	if !s.IsOverHalfOrder() {
		return raw
	}
	s.Negate()
	s.PutBytesUnchecked(raw[33:])
	raw[0] = lnHeaderMin + ((raw[0] - lnHeaderMin) ^ 1)
	return raw
}
