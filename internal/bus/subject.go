package bus

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Subject space. Every subject names the receiving LSP first and the
// sending LSP second, so that NATS permissions can bind both: an LSP may
// publish only subjects whose from-key is its own, and subscribe only to
// subjects whose to-key is its own.
//
//	asynclsp.in.<toKeyHex>.<fromKeyHex>.<kind>   durable, captured by the
//	                                             receiver's JetStream stream
//	asynclsp.req.<toKeyHex>.<fromKeyHex>.<kind>  core request/reply
//	_INBOX.<ownKeyHex>.>                         the LSP's reply inbox
const (
	durablePrefix = "asynclsp.in."
	requestPrefix = "asynclsp.req."
	inboxRoot     = "_INBOX."

	// streamPrefix + key hex names an LSP's inbound stream.
	streamPrefix = "asynclsp_in_"

	// ConsumerName is the durable pull consumer every LSP reads its
	// inbound stream with. Several asynclspd instances of one LSP share it.
	ConsumerName = "asynclspd"

	// requestQueue is the queue group request handlers join, so that
	// instances of one LSP share the requests.
	requestQueue = "asynclspd"

	// msgIDHeader is JetStream's de-duplication header.
	msgIDHeader = "Nats-Msg-Id"
)

// NodeKey is an LSP's Lightning node key, 33 bytes compressed. It is the
// LSP's identity on the bus and appears in subjects as 66 lower-case hex
// digits. onionmsg.NodeKey converts to it directly.
type NodeKey [33]byte

// ParseNodeKey parses 66 lower-case hex digits.
func ParseNodeKey(s string) (NodeKey, error) {
	var k NodeKey
	if len(s) != 2*len(k) {
		return k, fmt.Errorf("%w: %d hex digits, want 66", ErrInvalidKey, len(s))
	}
	if strings.ToLower(s) != s {
		return k, fmt.Errorf("%w: hex must be lower case", ErrInvalidKey)
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return NodeKey{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if !k.valid() {
		return NodeKey{}, fmt.Errorf("%w: not a compressed public key", ErrInvalidKey)
	}
	return k, nil
}

// String returns the key as 66 lower-case hex digits.
func (k NodeKey) String() string { return hex.EncodeToString(k[:]) }

// valid checks the compressed-point prefix. Whether the key is on the
// curve is for onionmsg, which verifies signatures with it.
func (k NodeKey) valid() bool { return k[0] == 0x02 || k[0] == 0x03 }

// MsgID is the 16-byte id of an onionmsg envelope. The bus uses it for
// JetStream's de-duplication; onionmsg.MsgID converts to it directly.
type MsgID [16]byte

// String returns the id as 32 lower-case hex digits.
func (id MsgID) String() string { return hex.EncodeToString(id[:]) }

// Kind names the type of a message. It is one subject token.
type Kind string

// The kinds asynclsp uses.
const (
	// KindInvoiceRequest asks a receiver LSP for an invoice (request/reply).
	KindInvoiceRequest Kind = "invoice_request"

	// KindHeldHTLCAvailable tells a receiver LSP a payment is held (durable).
	KindHeldHTLCAvailable Kind = "held_htlc_available"

	// KindReleaseHeldHTLC carries a receiver's release to the sender LSP
	// (durable).
	KindReleaseHeldHTLC Kind = "release_held_htlc"

	// KindHoldOutcome tells a receiver LSP how a hold ended (durable).
	KindHoldOutcome Kind = "hold_outcome"
)

// maxKindLen keeps subjects short.
const maxKindLen = 64

// Validate checks that k is 1 to 64 characters of [a-z0-9_].
func (k Kind) Validate() error {
	if len(k) == 0 || len(k) > maxKindLen {
		return fmt.Errorf("%w: %q: length %d, want 1 to %d", ErrInvalidKind, string(k), len(k), maxKindLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("%w: %q: byte %q", ErrInvalidKind, string(k), c)
		}
	}
	return nil
}

// DurableSubject is the subject a durable message from one LSP to another
// is published on.
func DurableSubject(to, from NodeKey, kind Kind) string {
	return durablePrefix + to.String() + "." + from.String() + "." + string(kind)
}

// RequestSubject is the subject a request from one LSP to another is sent
// on.
func RequestSubject(to, from NodeKey, kind Kind) string {
	return requestPrefix + to.String() + "." + from.String() + "." + string(kind)
}

// StreamName is the name of the JetStream stream that captures an LSP's
// inbound durable subjects.
func StreamName(owner NodeKey) string { return streamPrefix + owner.String() }

// streamSubjects are the subjects an LSP's inbound stream captures: every
// sender, every kind.
func streamSubjects(owner NodeKey) []string {
	return []string{durablePrefix + owner.String() + ".*.*"}
}

// inboxPrefix is the reply-inbox prefix of an LSP's connection.
func inboxPrefix(owner NodeKey) string { return inboxRoot + owner.String() }

// parseSubject splits an asynclsp subject with the given prefix into its
// to-key, from-key and kind.
func parseSubject(prefix, subject string) (to, from NodeKey, kind Kind, err error) {
	rest, ok := strings.CutPrefix(subject, prefix)
	if !ok {
		return to, from, "", fmt.Errorf("%w: %q: want prefix %q", ErrInvalidSubject, subject, prefix)
	}
	toHex, rest, ok1 := strings.Cut(rest, ".")
	fromHex, kindStr, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return to, from, "", fmt.Errorf("%w: %q: want %s<to>.<from>.<kind>", ErrInvalidSubject, subject, prefix)
	}
	if to, err = ParseNodeKey(toHex); err != nil {
		return to, from, "", fmt.Errorf("%w: %q: to-key: %w", ErrInvalidSubject, subject, err)
	}
	if from, err = ParseNodeKey(fromHex); err != nil {
		return to, from, "", fmt.Errorf("%w: %q: from-key: %w", ErrInvalidSubject, subject, err)
	}
	kind = Kind(kindStr)
	if err = kind.Validate(); err != nil {
		return to, from, "", fmt.Errorf("%w: %q: %w", ErrInvalidSubject, subject, err)
	}
	return to, from, kind, nil
}

// natsMsgID is the Nats-Msg-Id of a durable message. The sender's key is
// part of it so that one LSP cannot make the stream discard another's
// message as a duplicate by reusing its id.
func natsMsgID(from NodeKey, id MsgID) string {
	return from.String() + "-" + id.String()
}

// parseNatsMsgID recovers the envelope id from a Nats-Msg-Id.
func parseNatsMsgID(from NodeKey, s string) (MsgID, bool) {
	var id MsgID
	rest, ok := strings.CutPrefix(s, from.String()+"-")
	if !ok || len(rest) != 2*len(id) {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(rest)); err != nil {
		return MsgID{}, false
	}
	return id, true
}
