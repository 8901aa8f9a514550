package onionmsg

import "fmt"

// Maximum encoded sizes. Decoders reject longer input with ErrOversize
// before reading it; encoders refuse to produce it. Each leaves room for
// unknown odd records a later version may add.
const (
	// MaxInvoiceRequestSize bounds an invoice_request.
	MaxInvoiceRequestSize = 512

	// MaxInvoiceReplySize bounds an invoice_reply (the invoice itself is
	// at most MaxInvoiceLen).
	MaxInvoiceReplySize = 8192

	// MaxHeldHTLCAvailableSize bounds a held_htlc_available.
	MaxHeldHTLCAvailableSize = 512

	// MaxReleaseSize bounds a release_held_htlc.
	MaxReleaseSize = 512

	// MaxHoldOutcomeSize bounds a hold_outcome.
	MaxHoldOutcomeSize = 512

	// MaxPayloadSize bounds the payload an Envelope carries: the largest
	// message.
	MaxPayloadSize = MaxInvoiceReplySize

	// MaxEnvelopeSize bounds an encoded Envelope.
	MaxEnvelopeSize = MaxPayloadSize + 512
)

// Message is one of the five messages: *InvoiceRequest, *InvoiceReply,
// *HeldHTLCAvailable, *ReleaseHeldHTLC or *HoldOutcome.
type Message interface {
	// MsgType returns the message's type number. It does not read the
	// message, so a nil pointer of the message's type answers too.
	MsgType() MsgType

	// Encode returns the message's canonical TLV stream.
	Encode() ([]byte, error)
}

// DecodeMessage decodes the payload of a message of type t. It fails with
// ErrUnknownMessageType for a type this code does not know, and otherwise
// as the message's own decoder does.
func DecodeMessage(t MsgType, payload []byte) (Message, error) {
	switch t {
	case TypeInvoiceRequest:
		return DecodeInvoiceRequest(payload)
	case TypeInvoiceReply:
		return DecodeInvoiceReply(payload)
	case TypeHeldHTLCAvailable:
		return DecodeHeldHTLCAvailable(payload)
	case TypeReleaseHeldHTLC:
		return DecodeReleaseHeldHTLC(payload)
	case TypeHoldOutcome:
		return DecodeHoldOutcome(payload)
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownMessageType, uint64(t))
}

// knownType reports whether DecodeMessage knows t.
func knownType(t MsgType) bool {
	switch t {
	case TypeInvoiceRequest, TypeInvoiceReply, TypeHeldHTLCAvailable,
		TypeReleaseHeldHTLC, TypeHoldOutcome:
		return true
	}
	return false
}

// Open decodes an envelope's payload as the message type T, for example
// Open[*ReleaseHeldHTLC](env). It fails with ErrWrongMessageType if the
// envelope carries another type. Verify the envelope first.
func Open[T Message](e *Envelope) (T, error) {
	var zero T
	if want := zero.MsgType(); e.Type != want {
		return zero, fmt.Errorf("%w: got %v, want %v", ErrWrongMessageType,
			e.Type, want)
	}
	m, err := DecodeMessage(e.Type, e.Payload)
	if err != nil {
		return zero, err
	}
	return m.(T), nil
}

// Message decodes the envelope's payload as the message its type names.
// Verify the envelope first.
func (e *Envelope) Message() (Message, error) {
	return DecodeMessage(e.Type, e.Payload)
}
