package onionmsg

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/tlv"
)

// The fixtures' keys: fixed private keys, so every fixture is the same on
// every run.
var (
	senderLSPSigner   = fixtureSigner(0x11)
	receiverSigner    = fixtureSigner(0x22)
	receiverLSPSigner = fixtureSigner(0x33)
	otherSigner       = fixtureSigner(0x44)

	senderLSPKey   = senderLSPSigner.NodeKey()
	receiverKey    = receiverSigner.NodeKey()
	receiverLSPKey = receiverLSPSigner.NodeKey()
	otherKey       = otherSigner.NodeKey()
)

// fixtureSigner returns a signer whose private key is 32 bytes of b.
func fixtureSigner(b byte) *PrivKeySigner {
	key, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{b}, 32))
	return NewPrivKeySigner(key)
}

var (
	fixtureHoldID = HoldID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	fixtureHash    = lntypes.Hash(bytes.Repeat([]byte{0xab}, 32))
	fixtureSecret  = [32]byte(bytes.Repeat([]byte{0x5e}, 32))
	fixtureMsgID   = MsgID(bytes.Repeat([]byte{0x1d}, 16))
	fixtureNow     = time.Unix(1_750_000_000, 0).UTC()
	fixtureInvoice = "lnbcrt10u1p5fixturexampleinvoicexxxxxxxxxxxxxxxxxxxxxxx"
)

func fixtureInvoiceRequest() *InvoiceRequest {
	return &InvoiceRequest{
		HoldID:      fixtureHoldID,
		ReceiverKey: receiverKey,
		Amount:      1_000_000,
		MinExpiry:   fixtureNow.Add(7 * 24 * time.Hour),
	}
}

func fixtureInvoiceReply() *InvoiceReply {
	return &InvoiceReply{HoldID: fixtureHoldID, Invoice: fixtureInvoice}
}

func fixtureInvoiceReplyError() *InvoiceReply {
	return &InvoiceReply{
		HoldID:       fixtureHoldID,
		ErrorCode:    ReplyNoInvoicesLeft,
		ErrorMessage: "receiver has 0 unused invoices",
	}
}

func fixtureHeld() *HeldHTLCAvailable {
	return &HeldHTLCAvailable{
		HoldID:         fixtureHoldID,
		PaymentHash:    fixtureHash,
		Amount:         1_000_000,
		DeadlineHeight: 900_000,
		DeadlineTime:   fixtureNow.Add(72 * time.Hour),
		SenderLSPKey:   senderLSPKey,
		ReceiverKey:    receiverKey,
		ReleaseSecret:  fixtureSecret,
	}
}

// fixtureRelease is the receiver's answer to fixtureHeld, unsigned.
func fixtureRelease() *ReleaseHeldHTLC {
	return NewRelease(fixtureHeld(), fixtureNow, 10*time.Minute)
}

// lnReceiverSigner is the receiver of the ln_signature fixture: secret key
// 1, the key of LDK's public vector, so anyone can recompute the signature.
var lnReceiverSigner = secretKeyOne()

// fixtureReleaseLN is the fixture release by lnReceiverSigner's key,
// unsigned: the answer to fixtureHeld had it been for that receiver.
func fixtureReleaseLN() *ReleaseHeldHTLC {
	h := fixtureHeld()
	h.ReceiverKey = lnReceiverSigner.NodeKey()
	return NewRelease(h, fixtureNow, 10*time.Minute)
}

// lnSignedRelease returns fixtureReleaseLN signed as an ln_signature.
func lnSignedRelease(t testing.TB) *ReleaseHeldHTLC {
	t.Helper()
	r := fixtureReleaseLN()
	if err := r.SignLN(context.Background(), lnReceiverSigner); err != nil {
		t.Fatalf("sign release: %v", err)
	}
	return r
}

// fixtureExpectLN is what the sender LSP knows of fixtureReleaseLN's hold.
func fixtureExpectLN() ReleaseExpect {
	e := fixtureExpect()
	e.ReceiverKey = lnReceiverSigner.NodeKey()
	return e
}

// fixtureReleaseExtra carries two unknown odd records, one on each side of
// the signature.
func fixtureReleaseExtra() *ReleaseHeldHTLC {
	r := fixtureRelease()
	r.ExtraRecords = tlv.TypeMap{
		31:    []byte("future field"),
		1_001: {0x00, 0x01},
	}
	return r
}

func fixtureOutcome() *HoldOutcome {
	return &HoldOutcome{
		HoldID:      fixtureHoldID,
		PaymentHash: fixtureHash,
		Status:      StatusCanceled,
		Reason:      "deadline_passed",
	}
}

// fixtureOutcomeRejected refuses the fixture release, naming it.
func fixtureOutcomeRejected() *HoldOutcome {
	return &HoldOutcome{
		HoldID:        fixtureHoldID,
		PaymentHash:   fixtureHash,
		Status:        StatusRejected,
		Reason:        "wrong_release_secret",
		ReleaseDigest: [32]byte(bytes.Repeat([]byte{0xd1}, 32)),
	}
}

// fixtureExpect is what the sender LSP knows of the fixture hold.
func fixtureExpect() ReleaseExpect {
	return ReleaseExpect{
		HoldID:        fixtureHoldID,
		PaymentHash:   fixtureHash,
		ReleaseSecret: fixtureSecret,
		SenderLSPKey:  senderLSPKey,
		ReceiverKey:   receiverKey,
	}
}

// signedRelease returns the fixture release signed by s.
func signedRelease(t testing.TB, s Signer) *ReleaseHeldHTLC {
	t.Helper()
	r := fixtureRelease()
	if err := r.Sign(context.Background(), s); err != nil {
		t.Fatalf("sign release: %v", err)
	}
	return r
}

// fixtureEnvelope is the receiver LSP relaying the signed fixture release
// to the sender LSP.
func fixtureEnvelope(t testing.TB) *Envelope {
	t.Helper()
	e, err := NewEnvelope(context.Background(), receiverLSPSigner,
		receiverLSPKey, senderLSPKey, fixtureMsgID, fixtureNow,
		signedRelease(t, receiverSigner))
	if err != nil {
		t.Fatalf("new envelope: %v", err)
	}
	return e
}

// fixtureEnvelopeExpect is what the sender LSP knows of fixtureEnvelope.
func fixtureEnvelopeExpect() EnvelopeExpect {
	return EnvelopeExpect{From: receiverLSPKey, To: senderLSPKey}
}

// rawRecord is one TLV record as bytes, for building streams a correct
// encoder would never produce.
type rawRecord struct {
	typ uint64
	val []byte
}

// splitRecords cuts a well-formed stream into its records.
func splitRecords(t testing.TB, b []byte) []rawRecord {
	t.Helper()
	var (
		r    = bytes.NewReader(b)
		buf  [8]byte
		recs []rawRecord
	)
	for r.Len() > 0 {
		typ, err := tlv.ReadVarInt(r, &buf)
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		l, err := tlv.ReadVarInt(r, &buf)
		if err != nil {
			t.Fatalf("split: %v", err)
		}
		val := make([]byte, l)
		if _, err := r.Read(val); err != nil && l > 0 {
			t.Fatalf("split: %v", err)
		}
		recs = append(recs, rawRecord{typ, val})
	}
	return recs
}

// joinRecords writes the records in the order given.
func joinRecords(recs []rawRecord) []byte {
	var (
		w   bytes.Buffer
		buf [8]byte
	)
	for _, rec := range recs {
		_ = tlv.WriteVarInt(&w, rec.typ, &buf)
		_ = tlv.WriteVarInt(&w, uint64(len(rec.val)), &buf)
		w.Write(rec.val)
	}
	return w.Bytes()
}

// mustHex decodes hex or fails the test.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex: %v", err)
	}
	return b
}
