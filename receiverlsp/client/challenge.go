package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// ChallengeLen is the length of a registration challenge.
const ChallengeLen = 33 + 33 + 32 + 8 + 32

// ErrBadChallenge: bytes that are not a registration challenge, or one that
// is not for this receiver and LSP, or expired.
var ErrBadChallenge = errors.New("bad registration challenge")

// Challenge is what a receiver signs to prove it holds its node key. Its
// bytes, which the receiver signs as they are, are:
//
//	offset  size  field
//	0       33    lsp_key       the receiver LSP's node key
//	33      33    receiver_key  the registering receiver's node key
//	66      32    nonce         random
//	98      8     expires_at    u64 big-endian unix seconds
//	106     32    mac           the LSP's HMAC-SHA256 over bytes 0..105
//
// The signature is BIP-340 by receiver_key over
// sha256(sha256(tag) || sha256(tag) || challenge) with tag
// onionmsg.TagRegister ("asynclsp/register/v1"): lnd's signrpc
// SignMessage(msg=challenge, tag=..., schnorr_sig=true) with the node key.
// Or it is receiver_key's ln_signature over the text LNMessage returns, for
// a wallet that can only signmessage (lnd's lnrpc, CLN, LDK Node, the Breez
// SDK). The mac lets the LSP know it issued the challenge without storing it; a
// wallet treats it as opaque. Before signing, a wallet checks lsp_key is
// the LSP it means to register with, receiver_key is its own, and
// expires_at is ahead.
type Challenge struct {
	LSPKey      onionmsg.NodeKey
	ReceiverKey onionmsg.NodeKey
	Nonce       [32]byte
	ExpiresAt   time.Time
	MAC         [32]byte
}

// Bytes returns the challenge's bytes, the ones signed.
func (c *Challenge) Bytes() []byte {
	b := c.Unauthenticated()
	return append(b, c.MAC[:]...)
}

// LNMessage returns the text an ln_signature registration signs:
// onionmsg.RegisterLNMessage of the challenge's bytes.
func (c *Challenge) LNMessage() []byte {
	return onionmsg.RegisterLNMessage(c.Bytes())
}

// Unauthenticated returns the bytes the mac covers: all but the mac.
func (c *Challenge) Unauthenticated() []byte {
	b := make([]byte, 0, ChallengeLen)
	b = append(b, c.LSPKey[:]...)
	b = append(b, c.ReceiverKey[:]...)
	b = append(b, c.Nonce[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(c.ExpiresAt.Unix()))
}

// ParseChallenge reads a challenge's bytes. Both keys must be points.
func ParseChallenge(b []byte) (*Challenge, error) {
	if len(b) != ChallengeLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadChallenge,
			len(b), ChallengeLen)
	}
	var (
		c   Challenge
		err error
	)
	if c.LSPKey, err = onionmsg.NewNodeKey(b[:33]); err != nil {
		return nil, fmt.Errorf("%w: lsp key: %w", ErrBadChallenge, err)
	}
	if c.ReceiverKey, err = onionmsg.NewNodeKey(b[33:66]); err != nil {
		return nil, fmt.Errorf("%w: receiver key: %w", ErrBadChallenge, err)
	}
	copy(c.Nonce[:], b[66:98])
	secs := binary.BigEndian.Uint64(b[98:106])
	if secs > 253402300799 { // 9999-12-31
		return nil, fmt.Errorf("%w: expiry out of range", ErrBadChallenge)
	}
	c.ExpiresAt = time.Unix(int64(secs), 0).UTC()
	copy(c.MAC[:], b[106:])
	return &c, nil
}

// Check makes sure a challenge is one a receiver should sign: for the LSP
// lsp (skipped if zero), for receiver, and not expired at now.
func (c *Challenge) Check(lsp, receiver onionmsg.NodeKey, now time.Time) error {
	switch {
	case !lsp.IsZero() && c.LSPKey != lsp:
		return fmt.Errorf("%w: for LSP %s, expected %s", ErrBadChallenge,
			c.LSPKey, lsp)
	case c.ReceiverKey != receiver:
		return fmt.Errorf("%w: for receiver %s, we are %s", ErrBadChallenge,
			c.ReceiverKey, receiver)
	case !now.Before(c.ExpiresAt):
		return fmt.Errorf("%w: expired at %s", ErrBadChallenge, c.ExpiresAt)
	}
	return nil
}
