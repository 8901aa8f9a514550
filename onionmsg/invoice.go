package onionmsg

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tlv"
)

// Text limits of invoice_reply.
const (
	// MaxInvoiceLen is the longest BOLT11 invoice accepted, lnd's own
	// limit (the most a QR code holds).
	MaxInvoiceLen = 7089

	// MaxErrorMessageLen is the longest error message of an
	// invoice_reply, in bytes of UTF-8.
	MaxErrorMessageLen = 256
)

// InvoiceRequest is invoice_request: the sender LSP asks the receiver LSP for
// an unused invoice of one of its receivers. The sender LSP's key travels in
// the Envelope.
type InvoiceRequest struct {
	// HoldID names the hold the invoice is for. A retried request
	// carries the same id and gets the same invoice.
	HoldID HoldID

	// ReceiverKey is the receiver's node key.
	ReceiverKey NodeKey

	// Amount is what the receiver is to be paid. Not zero.
	Amount lnwire.MilliSatoshi

	// MinExpiry is the earliest expiry the invoice may have: the sender
	// LSP needs it valid until then (whole unix seconds on the wire).
	MinExpiry time.Time

	// ExtraRecords holds unknown odd records, kept so a message re-encodes
	// to the same bytes. Nil if there are none.
	ExtraRecords tlv.TypeMap
}

// MsgType implements Message.
func (*InvoiceRequest) MsgType() MsgType { return TypeInvoiceRequest }

func (m *InvoiceRequest) records() []tlv.Record {
	return []tlv.Record{
		fixedRecord(recHoldID, &m.HoldID),
		uintRecord(recAmount, &m.Amount),
		fixedRecord(recReceiverKey, &m.ReceiverKey),
		uintRecord(recMinExpiry, &m.MinExpiry),
	}
}

func (m *InvoiceRequest) validate() error {
	if m.Amount == 0 {
		return fmt.Errorf("%w: zero amount", ErrInvalidValue)
	}
	if err := validNodeKey("receiver key", m.ReceiverKey); err != nil {
		return err
	}
	return validTime("min expiry", m.MinExpiry)
}

// Encode implements Message.
func (m *InvoiceRequest) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode invoice_request: %w", err)
	}
	return encodeTLV(m.records(), m.ExtraRecords, MaxInvoiceRequestSize)
}

// DecodeInvoiceRequest strictly decodes an invoice_request.
func DecodeInvoiceRequest(b []byte) (*InvoiceRequest, error) {
	m := new(InvoiceRequest)
	parsed, extra, err := decodeTLV(b, MaxInvoiceRequestSize, m.records()...)
	if err == nil {
		err = require(parsed, recHoldID, recAmount, recReceiverKey,
			recMinExpiry)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode invoice_request: %w", err)
	}
	m.ExtraRecords = extra
	return m, nil
}

// ReplyErrorCode says why a receiver LSP hands out no invoice.
type ReplyErrorCode uint16

// The invoice_reply error codes.
const (
	// ReplyUnknownReceiver: the receiver LSP serves no such receiver.
	ReplyUnknownReceiver ReplyErrorCode = 1

	// ReplyNoInvoicesLeft: the receiver has no unused invoice left.
	ReplyNoInvoicesLeft ReplyErrorCode = 2

	// ReplyAmountOutOfRange: no invoice can take this amount.
	ReplyAmountOutOfRange ReplyErrorCode = 3
)

// String names the code as the documentation does.
func (c ReplyErrorCode) String() string {
	switch c {
	case ReplyUnknownReceiver:
		return "unknown_receiver"
	case ReplyNoInvoicesLeft:
		return "no_invoices_left"
	case ReplyAmountOutOfRange:
		return "amount_out_of_range"
	}
	return fmt.Sprintf("unknown(%d)", uint16(c))
}

// InvoiceReply is invoice_reply: the receiver LSP's answer to an
// InvoiceRequest. It carries either Invoice or ErrorCode (with an optional
// ErrorMessage), never both.
type InvoiceReply struct {
	// HoldID is the request's hold id.
	HoldID HoldID

	// Invoice is the receiver's BOLT11 invoice, or empty on error.
	Invoice string

	// ErrorCode is why there is no invoice, or zero.
	ErrorCode ReplyErrorCode

	// ErrorMessage is a short human-readable detail of ErrorCode, at
	// most MaxErrorMessageLen bytes of UTF-8. Optional.
	ErrorMessage string

	// ExtraRecords holds unknown odd records. Nil if there are none.
	ExtraRecords tlv.TypeMap
}

// MsgType implements Message.
func (*InvoiceReply) MsgType() MsgType { return TypeInvoiceReply }

// records lists the records to encode (only those with a value) or, with
// all set, every record a decoder may meet.
func (m *InvoiceReply) records(all bool) []tlv.Record {
	recs := []tlv.Record{fixedRecord(recHoldID, &m.HoldID)}
	if all || m.Invoice != "" {
		recs = append(recs, stringRecord(recInvoice, &m.Invoice,
			MaxInvoiceLen))
	}
	if all || m.ErrorCode != 0 {
		recs = append(recs, uintRecord(recErrorCode, &m.ErrorCode))
	}
	if all || m.ErrorMessage != "" {
		recs = append(recs, stringRecord(recErrorMessage,
			&m.ErrorMessage, MaxErrorMessageLen))
	}
	return recs
}

func (m *InvoiceReply) validate() error {
	switch {
	case m.Invoice != "" && (m.ErrorCode != 0 || m.ErrorMessage != ""):
		return fmt.Errorf("%w: invoice and error", ErrConflictingRecords)
	case m.Invoice == "" && m.ErrorCode == 0:
		return fmt.Errorf("%w: neither invoice nor error code",
			ErrMissingRecord)
	case m.ErrorCode > ReplyAmountOutOfRange:
		return fmt.Errorf("%w: error code %d", ErrInvalidValue,
			m.ErrorCode)
	case len(m.Invoice) > MaxInvoiceLen:
		return fmt.Errorf("%w: invoice of %d bytes", ErrWrongLength,
			len(m.Invoice))
	case len(m.ErrorMessage) > MaxErrorMessageLen:
		return fmt.Errorf("%w: error message of %d bytes",
			ErrWrongLength, len(m.ErrorMessage))
	case !isPrintableASCII(m.Invoice):
		return fmt.Errorf("%w: invoice is not printable ASCII",
			ErrInvalidValue)
	case !utf8.ValidString(m.ErrorMessage):
		return fmt.Errorf("%w: error message is not UTF-8",
			ErrInvalidValue)
	}
	return nil
}

// Encode implements Message.
func (m *InvoiceReply) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode invoice_reply: %w", err)
	}
	return encodeTLV(m.records(false), m.ExtraRecords, MaxInvoiceReplySize)
}

// DecodeInvoiceReply strictly decodes an invoice_reply. A text record that
// is present must not be empty.
func DecodeInvoiceReply(b []byte) (*InvoiceReply, error) {
	m := new(InvoiceReply)
	parsed, extra, err := decodeTLV(b, MaxInvoiceReplySize, m.records(true)...)
	if err == nil {
		err = require(parsed, recHoldID)
	}
	if err == nil && ((has(parsed, recInvoice) && m.Invoice == "") ||
		(has(parsed, recErrorMessage) && m.ErrorMessage == "")) {
		err = fmt.Errorf("%w: empty text record", ErrInvalidValue)
	}
	if err == nil && has(parsed, recErrorCode) && m.ErrorCode == 0 {
		err = fmt.Errorf("%w: error code 0", ErrInvalidValue)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode invoice_reply: %w", err)
	}
	m.ExtraRecords = extra
	return m, nil
}

// isPrintableASCII reports whether s is made of ASCII 0x21..0x7e only.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
