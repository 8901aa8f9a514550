package onionmsg

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// The tags of the BIP-340 tagged hashes this project signs. A signature
// under one tag never verifies under another, so a release can never pass
// for an envelope or a registration challenge.
const (
	// TagRelease signs the release_held_htlc stream (see
	// ReleaseHeldHTLC.SignedBytes).
	TagRelease = "asynclsp/release_held_htlc/v1"

	// TagEnvelope signs an Envelope (see Envelope.SignedBytes).
	TagEnvelope = "asynclsp/envelope/v1"

	// TagRegister signs the challenge a receiver answers when it
	// registers with its LSP (the challenge bytes are the receiver LSP's
	// to define).
	TagRegister = "asynclsp/register/v1"
)

// Signer signs msg with a node key: a BIP-340 Schnorr signature over
// TaggedDigest(tag, msg). lnd's signrpc SignMessage with schnorr_sig=true and
// this tag does exactly that with its node key (key family 6, index 0).
type Signer interface {
	// SignTagged returns the 64-byte BIP-340 signature of
	// sha256(sha256(tag) || sha256(tag) || msg).
	SignTagged(ctx context.Context, tag, msg []byte) ([64]byte, error)
}

// PrivKeySigner is a Signer that holds its private key in process: for
// tests, and for wallets that keep their node key themselves.
type PrivKeySigner struct {
	key *btcec.PrivateKey
	pub NodeKey
}

// NewPrivKeySigner returns a Signer for key.
func NewPrivKeySigner(key *btcec.PrivateKey) *PrivKeySigner {
	return &PrivKeySigner{key: key, pub: NodeKeyFromPubKey(key.PubKey())}
}

// NodeKey returns the public key the signer signs for.
func (s *PrivKeySigner) NodeKey() NodeKey { return s.pub }

// SignTagged implements Signer. Like lnd, it refuses tags that start with
// "BIP0340" or "TapSighash". Signatures are deterministic (RFC 6979 nonces).
func (s *PrivKeySigner) SignTagged(ctx context.Context, tag,
	msg []byte) ([64]byte, error) {

	var out [64]byte
	if err := ctx.Err(); err != nil {
		return out, err
	}
	if err := CheckTag(tag); err != nil {
		return out, err
	}
	digest := TaggedDigest(tag, msg)
	sig, err := schnorr.Sign(s.key, digest[:])
	if err != nil {
		return out, fmt.Errorf("onionmsg: sign: %w", err)
	}
	copy(out[:], sig.Serialize())
	return out, nil
}

// CheckTag fails with ErrInvalidTag for a tag lnd's SignMessage refuses:
// empty, or starting with "BIP0340" or "TapSighash".
func CheckTag(tag []byte) error {
	switch {
	case len(tag) == 0:
		return fmt.Errorf("%w: empty", ErrInvalidTag)
	case bytes.HasPrefix(tag, []byte("BIP0340")),
		bytes.HasPrefix(tag, chainhash.TagTapSighash):
		return fmt.Errorf("%w: %q is reserved", ErrInvalidTag, tag)
	}
	return nil
}

// TaggedDigest returns the BIP-340 tagged hash of msg:
// sha256(sha256(tag) || sha256(tag) || msg).
func TaggedDigest(tag, msg []byte) [32]byte {
	return *chainhash.TaggedHash(tag, msg)
}

// VerifyTagged checks that sig is key's BIP-340 signature over
// TaggedDigest(tag, msg), against the x-only form of key. It fails with
// ErrInvalidKey, ErrInvalidSignatureEncoding or ErrBadSignature.
func VerifyTagged(tag, msg []byte, sig [64]byte, key NodeKey) error {
	if key[0] != 0x02 && key[0] != 0x03 {
		return fmt.Errorf("%w: not a compressed key", ErrInvalidKey)
	}
	var xOnly [32]byte
	copy(xOnly[:], key[1:])
	return VerifySchnorr(TaggedDigest(tag, msg), sig, xOnly)
}

// VerifySchnorr is BIP-340 verification of sig over the 32-byte message
// digest under the x-only public key xOnly. It is the low-level check
// VerifyTagged uses. It fails with ErrInvalidKey if xOnly is not the x
// coordinate of a curve point, ErrInvalidSignatureEncoding if r >= p or
// s >= n, and ErrBadSignature otherwise.
func VerifySchnorr(digest [32]byte, sig [64]byte, xOnly [32]byte) error {
	if err := checkSignatureEncoding(&sig); err != nil {
		return err
	}
	pk, err := xOnlyKeys.get(xOnly)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	parsed, err := schnorr.ParseSignature(sig[:])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignatureEncoding, err)
	}
	if !parsed.Verify(digest[:], pk) {
		return ErrBadSignature
	}
	return nil
}

// checkSignatureEncoding checks the BIP-340 ranges: r < p and s < n. The
// schnorr package checks r but reduces s modulo n without complaint, so we
// check both ourselves.
func checkSignatureEncoding(sig *[64]byte) error {
	var r btcec.FieldVal
	if r.SetByteSlice(sig[:32]) {
		return fmt.Errorf("%w: r is not below the field size",
			ErrInvalidSignatureEncoding)
	}
	var s btcec.ModNScalar
	if s.SetByteSlice(sig[32:]) {
		return fmt.Errorf("%w: s is not below the group order",
			ErrInvalidSignatureEncoding)
	}
	return nil
}
