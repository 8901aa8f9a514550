package onionmsg

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/btcsuite/btcd/btcec/v2"
)

// MsgType numbers a message. It is the TLV type the payload would carry in an
// onion message, and the message type field of an Envelope.
type MsgType uint64

// The message types. 72 and 74 follow LDK's numbering of the async payment
// onion messages. The other three are asynclsp's own, taken from the even
// range 7_000_000..7_000_098 that nothing in the BOLTs, lnd or LDK uses.
const (
	// TypeHeldHTLCAvailable is held_htlc_available: sender LSP to
	// receiver LSP, "an HTLC for your receiver is held".
	TypeHeldHTLCAvailable MsgType = 72

	// TypeReleaseHeldHTLC is release_held_htlc: the receiver's signed
	// release, relayed by the receiver LSP to the sender LSP.
	TypeReleaseHeldHTLC MsgType = 74

	// TypeInvoiceRequest is invoice_request: sender LSP asks the receiver
	// LSP for one of a receiver's invoices.
	TypeInvoiceRequest MsgType = 7_000_000

	// TypeInvoiceReply is invoice_reply: the invoice, or a coded error.
	TypeInvoiceReply MsgType = 7_000_002

	// TypeHoldOutcome is hold_outcome: sender LSP tells the receiver LSP
	// what became of a hold.
	TypeHoldOutcome MsgType = 7_000_004
)

// String names the message type as the documentation does.
func (t MsgType) String() string {
	switch t {
	case TypeHeldHTLCAvailable:
		return "held_htlc_available"
	case TypeReleaseHeldHTLC:
		return "release_held_htlc"
	case TypeInvoiceRequest:
		return "invoice_request"
	case TypeInvoiceReply:
		return "invoice_reply"
	case TypeHoldOutcome:
		return "hold_outcome"
	default:
		return fmt.Sprintf("unknown(%d)", uint64(t))
	}
}

// HoldID names one held payment across both LSPs. It is hex in APIs.
type HoldID [16]byte

// NewHoldID returns a random hold id.
func NewHoldID() HoldID {
	var id HoldID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+).
	return id
}

// ParseHoldID parses the 32 hex digits of a hold id.
func ParseHoldID(s string) (HoldID, error) {
	var id HoldID
	err := decodeHexInto(id[:], s)
	return id, err
}

// String returns the hold id in hex.
func (id HoldID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the hold id as hex.
func (id HoldID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hold id from hex.
func (id *HoldID) UnmarshalText(b []byte) error { return decodeHexInto(id[:], string(b)) }

// MsgID names one envelope, so the bus can drop a duplicate. It is hex in
// APIs.
type MsgID [16]byte

// NewMsgID returns a random message id.
func NewMsgID() MsgID {
	var id MsgID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go 1.24+).
	return id
}

// String returns the message id in hex.
func (id MsgID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText encodes the message id as hex.
func (id MsgID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a message id from hex.
func (id *MsgID) UnmarshalText(b []byte) error { return decodeHexInto(id[:], string(b)) }

// NodeKey is a Lightning node's public key, 33 bytes compressed. A NodeKey
// made by NewNodeKey, ParseNodeKey, NodeKeyFromPubKey or any decoder in this
// package is a valid point on secp256k1; compare keys with ==.
type NodeKey [33]byte

// NewNodeKey checks that b is a compressed secp256k1 point and returns it as
// a NodeKey.
func NewNodeKey(b []byte) (NodeKey, error) {
	var k NodeKey
	if len(b) != len(k) {
		return k, fmt.Errorf("%w: %d bytes, want 33", ErrInvalidKey, len(b))
	}
	copy(k[:], b)
	if _, err := k.PubKey(); err != nil {
		return NodeKey{}, err
	}
	return k, nil
}

// ParseNodeKey parses the 66 hex digits of a compressed node key.
func ParseNodeKey(s string) (NodeKey, error) {
	var k NodeKey
	if err := decodeHexInto(k[:], s); err != nil {
		return NodeKey{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return NewNodeKey(k[:])
}

// NodeKeyFromPubKey returns the compressed form of pk.
func NodeKeyFromPubKey(pk *btcec.PublicKey) NodeKey {
	var k NodeKey
	copy(k[:], pk.SerializeCompressed())
	return k
}

// PubKey parses the key. It fails with ErrInvalidKey if the bytes are not a
// point on the curve (the zero NodeKey among them).
func (k NodeKey) PubKey() (*btcec.PublicKey, error) {
	pk, err := compressedKeys.get(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return pk, nil
}

// IsZero reports whether k is the zero value (never a valid key).
func (k NodeKey) IsZero() bool { return k == NodeKey{} }

// String returns the key in hex.
func (k NodeKey) String() string { return hex.EncodeToString(k[:]) }

// MarshalText encodes the key as hex.
func (k NodeKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a key from hex and checks it is on the curve.
func (k *NodeKey) UnmarshalText(b []byte) error {
	parsed, err := ParseNodeKey(string(b))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

// NewReleaseSecret returns a fresh random 32-byte release secret.
func NewReleaseSecret() [32]byte {
	var s [32]byte
	_, _ = rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+).
	return s
}

// decodeHexInto decodes s, which must be exactly 2*len(dst) hex digits.
func decodeHexInto(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("onionmsg: %d hex digits, want %d", len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("onionmsg: %w", err)
	}
	return nil
}
