package onionmsg

import (
	"context"
	"errors"
	"fmt"

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
// SignMessage does exactly that with its node key.
type MessageSigner interface {
	// SignMessage returns the zbase32 ln_signature of msg.
	SignMessage(ctx context.Context, msg []byte) (string, error)
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

// RecoverLNSignature returns the node key that made sig over msg.
func RecoverLNSignature(msg []byte, sig string) (NodeKey, error) {
	raw, err := zbase32.DecodeString(sig)
	if err != nil {
		return NodeKey{}, fmt.Errorf("%w: not zbase32", ErrBadLNSignature)
	}
	if len(raw) != 65 {
		return NodeKey{}, fmt.Errorf("%w: %d bytes, want 65", ErrBadLNSignature,
			len(raw))
	}
	digest := LNMessageDigest(msg)
	pub, compressed, err := ecdsa.RecoverCompact(raw, digest[:])
	if err != nil {
		return NodeKey{}, fmt.Errorf("%w: %v", ErrBadLNSignature, err)
	}
	if !compressed {
		return NodeKey{}, fmt.Errorf("%w: signature for an uncompressed key",
			ErrBadLNSignature)
	}
	return NodeKeyFromPubKey(pub), nil
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
