package onionmsg

import (
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tlv"
)

// HeldHTLCAvailable is held_htlc_available (type 72): the sender LSP tells
// the receiver LSP that it holds an HTLC for one of its receivers. The
// receiver LSP keeps it in the receiver's mailbox; the receiver answers with
// a ReleaseHeldHTLC that repeats the hold id, payment hash, both keys and the
// release secret.
type HeldHTLCAvailable struct {
	// HoldID names the hold.
	HoldID HoldID

	// PaymentHash is the hash of the receiver's invoice.
	PaymentHash lntypes.Hash

	// Amount is what the receiver will be paid. Not zero.
	Amount lnwire.MilliSatoshi

	// DeadlineHeight is the block height by which the hold is canceled
	// if no release came.
	DeadlineHeight uint32

	// DeadlineTime is the moment by which the hold is canceled if no
	// release came (whole unix seconds on the wire).
	DeadlineTime time.Time

	// SenderLSPKey is the node key of the LSP that holds the HTLC, the
	// one a release must name.
	SenderLSPKey NodeKey

	// ReceiverKey is the receiver's node key: the destination of the
	// invoice, the key that must sign the release.
	ReceiverKey NodeKey

	// ReleaseSecret is a fresh random secret the release must repeat.
	// Never zero.
	ReleaseSecret [32]byte

	// ExtraRecords holds unknown odd records. Nil if there are none.
	ExtraRecords tlv.TypeMap
}

// MsgType implements Message.
func (*HeldHTLCAvailable) MsgType() MsgType { return TypeHeldHTLCAvailable }

func (m *HeldHTLCAvailable) records() []tlv.Record {
	return []tlv.Record{
		fixedRecord(recHoldID, &m.HoldID),
		fixedRecord(recPaymentHash, &m.PaymentHash),
		uintRecord(recAmount, &m.Amount),
		fixedRecord(recSenderLSPKey, &m.SenderLSPKey),
		fixedRecord(recReceiverKey, &m.ReceiverKey),
		fixedRecord(recReleaseSecret, &m.ReleaseSecret),
		uintRecord(recDeadlineHeight, &m.DeadlineHeight),
		uintRecord(recDeadlineTime, &m.DeadlineTime),
	}
}

func (m *HeldHTLCAvailable) validate() error {
	if m.Amount == 0 {
		return fmt.Errorf("%w: zero amount", ErrInvalidValue)
	}
	if m.ReleaseSecret == [32]byte{} {
		return fmt.Errorf("%w: zero release secret", ErrInvalidValue)
	}
	if err := validNodeKey("sender LSP key", m.SenderLSPKey); err != nil {
		return err
	}
	if err := validNodeKey("receiver key", m.ReceiverKey); err != nil {
		return err
	}
	return validTime("deadline", m.DeadlineTime)
}

// Encode implements Message.
func (m *HeldHTLCAvailable) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode held_htlc_available: %w", err)
	}
	return encodeTLV(m.records(), m.ExtraRecords, MaxHeldHTLCAvailableSize)
}

// DecodeHeldHTLCAvailable strictly decodes a held_htlc_available. Every
// record is required.
func DecodeHeldHTLCAvailable(b []byte) (*HeldHTLCAvailable, error) {
	m := new(HeldHTLCAvailable)
	parsed, extra, err := decodeTLV(b, MaxHeldHTLCAvailableSize,
		m.records()...)
	if err == nil {
		err = require(parsed, recHoldID, recPaymentHash, recAmount,
			recSenderLSPKey, recReceiverKey, recReleaseSecret,
			recDeadlineHeight, recDeadlineTime)
	}
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("decode held_htlc_available: %w", err)
	}
	m.ExtraRecords = extra
	return m, nil
}
