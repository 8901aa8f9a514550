package onionmsg

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"github.com/lightningnetwork/lnd/tlv"
	"slices"
	"strings"
	"testing"
)

// edit returns the golden message name with its records changed by f.
func edit(t *testing.T, name string, f func([]rawRecord) []rawRecord) []byte {
	t.Helper()
	return joinRecords(f(splitRecords(t, readGolden(t, name))))
}

// setRecord replaces the value of record typ.
func setRecord(typ uint64, val []byte) func([]rawRecord) []rawRecord {
	return func(recs []rawRecord) []rawRecord {
		for i := range recs {
			if recs[i].typ == typ {
				recs[i].val = val
			}
		}
		return recs
	}
}

// dropRecord removes record typ.
func dropRecord(typ uint64) func([]rawRecord) []rawRecord {
	return func(recs []rawRecord) []rawRecord {
		return slices.DeleteFunc(recs, func(r rawRecord) bool {
			return r.typ == typ
		})
	}
}

// addRecord inserts a record in type order.
func addRecord(typ uint64, val []byte) func([]rawRecord) []rawRecord {
	return func(recs []rawRecord) []rawRecord {
		i := slices.IndexFunc(recs, func(r rawRecord) bool { return r.typ > typ })
		if i < 0 {
			i = len(recs)
		}
		return slices.Insert(recs, i, rawRecord{typ, val})
	}
}

var (
	// notOnCurve is 02 || x where x is BIP-340 vector 5's key, which is
	// not on the curve.
	notOnCurve = "02EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34"

	// sOverflow is a signature whose s equals the group order n.
	sOverflow = strings.Repeat("11", 32) +
		"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"

	// rOverflow is a signature whose r equals the field size p.
	rOverflow = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F" +
		strings.Repeat("11", 32)
)

// TestDecodeRejects checks every decoding rejection with its specific error.
func TestDecodeRejects(t *testing.T) {
	release := readGolden(t, "release_held_htlc")
	decRelease := func(b []byte) error { _, err := DecodeReleaseHeldHTLC(b); return err }
	decRequest := func(b []byte) error { _, err := DecodeInvoiceRequest(b); return err }
	decReply := func(b []byte) error { _, err := DecodeInvoiceReply(b); return err }
	decHeld := func(b []byte) error { _, err := DecodeHeldHTLCAvailable(b); return err }
	decOutcome := func(b []byte) error { _, err := DecodeHoldOutcome(b); return err }
	decEnvelope := func(b []byte) error { _, err := DecodeEnvelope(b); return err }

	cases := []struct {
		name   string
		decode func([]byte) error
		input  []byte
		want   error
	}{
		// Framing.
		{"truncated value", decRelease, release[:len(release)-1], ErrTruncated},
		{"truncated after type", decRelease, release[:1], ErrTruncated},
		{"truncated length varint", decRelease, append(slices.Clone(release), 0xf1, 0xfd, 0x01), ErrTruncated},
		{"truncated unknown odd record", decRelease, append(slices.Clone(release), 0xf1, 0x05, 0x00), ErrTruncated},
		{"unknown odd record of 4 GiB", decRelease, append(slices.Clone(release), 0xf1, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0), ErrTruncated},
		{"truncated type varint", decRelease, append(slices.Clone(release), 0xfe, 0x00), ErrTruncated},
		{"oversize", decRelease, edit(t, "release_held_htlc", addRecord(1001, make([]byte, 300))), ErrOversize},
		{"oversize envelope", decEnvelope, make([]byte, MaxEnvelopeSize+1), ErrOversize},
		{"unknown even type after signature", decRelease, edit(t, "release_held_htlc", addRecord(244, nil)), ErrUnknownEvenType},
		{"field of another message", decRelease, edit(t, "release_held_htlc", addRecord(uint64(recAmount), make([]byte, 8))), ErrUnknownEvenType},
		{"duplicate type", decRelease, edit(t, "release_held_htlc", func(r []rawRecord) []rawRecord {
			return slices.Insert(r, 1, r[0])
		}), ErrDuplicateType},
		{"out of order", decRelease, edit(t, "release_held_htlc", func(r []rawRecord) []rawRecord {
			r[1], r[2] = r[2], r[1]
			return r
		}), ErrOutOfOrder},
		{"non-minimal type varint", decRelease, append([]byte{0xfd, 0x00, 0x00}, release[1:]...), ErrNonCanonicalVarInt},
		{"non-minimal length varint", decRelease, append([]byte{0x00, 0xfd, 0x00, 0x10}, release[2:]...), ErrNonCanonicalVarInt},
		{"non-minimal 4-byte varint", decRelease, append(slices.Clone(release), 0xfe, 0x00, 0x00, 0xff, 0xff, 0x00), ErrNonCanonicalVarInt},
		{"non-minimal 8-byte varint", decRelease, append(slices.Clone(release), 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x00), ErrNonCanonicalVarInt},

		// Lengths.
		{"short hold id", decRelease, edit(t, "release_held_htlc", setRecord(0, make([]byte, 15))), ErrWrongLength},
		{"long hash", decRelease, edit(t, "release_held_htlc", setRecord(2, make([]byte, 33))), ErrWrongLength},
		{"short time", decRelease, edit(t, "release_held_htlc", setRecord(12, make([]byte, 4))), ErrWrongLength},
		{"short signature", decRelease, edit(t, "release_held_htlc", setRecord(240, make([]byte, 63))), ErrWrongLength},
		{"invoice too long", decReply, edit(t, "invoice_reply", setRecord(22, bytes.Repeat([]byte{'a'}, MaxInvoiceLen+1))), ErrWrongLength},
		{"error message too long", decReply, edit(t, "invoice_reply_error", setRecord(26, bytes.Repeat([]byte{'a'}, MaxErrorMessageLen+1))), ErrWrongLength},
		{"reason too long", decOutcome, edit(t, "hold_outcome", setRecord(30, bytes.Repeat([]byte{'a'}, MaxReasonLen+1))), ErrWrongLength},
		{"short release digest", decOutcome, edit(t, "hold_outcome_rejected", setRecord(33, make([]byte, 31))), ErrWrongLength},
		{"duplicate release digest", decOutcome, edit(t, "hold_outcome_rejected", func(r []rawRecord) []rawRecord {
			return append(r, r[len(r)-1])
		}), ErrDuplicateType},
		{"payload too long", decEnvelope, edit(t, "envelope", setRecord(12, make([]byte, MaxPayloadSize+1))), ErrWrongLength},

		// Missing and conflicting records.
		{"empty input", decRelease, nil, ErrMissingRecord},
		{"no signature", decRelease, edit(t, "release_held_htlc", dropRecord(240)), ErrMissingRecord},
		{"no secret", decRelease, edit(t, "release_held_htlc", dropRecord(10)), ErrMissingRecord},
		{"no deadline", decHeld, edit(t, "held_htlc_available", dropRecord(18)), ErrMissingRecord},
		{"no min expiry", decRequest, edit(t, "invoice_request", dropRecord(20)), ErrMissingRecord},
		{"reply with neither", decReply, edit(t, "invoice_reply", dropRecord(22)), ErrMissingRecord},
		{"reply with both", decReply, edit(t, "invoice_reply", addRecord(24, []byte{0, 1})), ErrConflictingRecords},
		{"envelope without payload", decEnvelope, edit(t, "envelope", dropRecord(12)), ErrMissingRecord},

		// Values.
		{"zero secret", decRelease, edit(t, "release_held_htlc", setRecord(10, make([]byte, 32))), ErrInvalidValue},
		{"time past 9999", decRelease, edit(t, "release_held_htlc", setRecord(14, bytes.Repeat([]byte{0xff}, 8))), ErrInvalidValue},
		{"zero amount request", decRequest, edit(t, "invoice_request", setRecord(4, make([]byte, 8))), ErrInvalidValue},
		{"zero amount held", decHeld, edit(t, "held_htlc_available", setRecord(4, make([]byte, 8))), ErrInvalidValue},
		{"zero secret held", decHeld, edit(t, "held_htlc_available", setRecord(10, make([]byte, 32))), ErrInvalidValue},
		{"error code 0", decReply, edit(t, "invoice_reply_error", setRecord(24, []byte{0, 0})), ErrInvalidValue},
		{"error code 4", decReply, edit(t, "invoice_reply_error", setRecord(24, []byte{0, 4})), ErrInvalidValue},
		{"message not UTF-8", decReply, edit(t, "invoice_reply_error", setRecord(26, []byte{0xff, 0xfe})), ErrInvalidValue},
		{"empty message record", decReply, edit(t, "invoice_reply_error", setRecord(26, nil)), ErrInvalidValue},
		{"empty invoice record", decReply, edit(t, "invoice_reply", setRecord(22, nil)), ErrInvalidValue},
		{"invoice with a space", decReply, edit(t, "invoice_reply", setRecord(22, []byte("lnbc 1"))), ErrInvalidValue},
		{"status 0", decOutcome, edit(t, "hold_outcome", setRecord(28, []byte{0})), ErrInvalidValue},
		{"status 5", decOutcome, edit(t, "hold_outcome", setRecord(28, []byte{5})), ErrInvalidValue},
		{"empty reason record", decOutcome, edit(t, "hold_outcome", setRecord(30, nil)), ErrInvalidValue},
		{"reason not ASCII", decOutcome, edit(t, "hold_outcome", setRecord(30, []byte("é"))), ErrInvalidValue},
		{"zero release digest", decOutcome, edit(t, "hold_outcome_rejected", setRecord(33, make([]byte, 32))), ErrInvalidValue},

		// Keys and signatures.
		{"key not on curve", decRelease, edit(t, "release_held_htlc", setRecord(8, mustHex(t, notOnCurve))), ErrInvalidKey},
		{"uncompressed key prefix", decHeld, edit(t, "held_htlc_available", setRecord(6, append([]byte{0x04}, receiverKey[1:]...))), ErrInvalidKey},
		{"zero key", decRequest, edit(t, "invoice_request", setRecord(8, make([]byte, 33))), ErrInvalidKey},
		{"envelope from not on curve", decEnvelope, edit(t, "envelope", setRecord(6, mustHex(t, notOnCurve))), ErrInvalidKey},
		{"signature s = n", decRelease, edit(t, "release_held_htlc", setRecord(240, mustHex(t, sOverflow))), ErrInvalidSignatureEncoding},
		{"signature r = p", decEnvelope, edit(t, "envelope", setRecord(240, mustHex(t, rOverflow))), ErrInvalidSignatureEncoding},

		// Envelope version and type.
		{"version 2", decEnvelope, edit(t, "envelope", setRecord(0, []byte{2})), ErrUnsupportedVersion},
		{"version 2 with new even records", decEnvelope, edit(t, "envelope", func(r []rawRecord) []rawRecord {
			r = setRecord(0, []byte{2})(r)
			return addRecord(14, []byte{1})(r)
		}), ErrUnsupportedVersion},
		{"version 0", decEnvelope, edit(t, "envelope", setRecord(0, []byte{0})), ErrUnsupportedVersion},
		{"unknown message type", decEnvelope, edit(t, "envelope", setRecord(2, []byte{0, 0, 0, 0, 0, 0, 0, 99})), ErrUnknownMessageType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.decode(c.input)
			t.Log(err)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestDecodeKeepsUnknownOdd checks unknown odd records are skipped, kept,
// and signed: the golden release with extra records verifies.
func TestDecodeKeepsUnknownOdd(t *testing.T) {
	r, err := DecodeReleaseHeldHTLC(readGolden(t, "release_held_htlc_extra"))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.ExtraRecords[31]) != "future field" || len(r.ExtraRecords) != 2 {
		t.Fatalf("extra records %v", r.ExtraRecords)
	}
	if err := VerifyRelease(r, fixtureExpect(), fixtureNow, 0); err != nil {
		t.Fatalf("verify: %v", err)
	}

	// Dropping an unknown record changes the signed bytes.
	delete(r.ExtraRecords, 31)
	err = VerifyRelease(r, fixtureExpect(), fixtureNow, 0)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("without extra record: got %v, want ErrBadSignature", err)
	}
}

// TestOutcomeDigestIsOptional checks release_digest is a record an older
// receiver LSP skips: decoded with hold_outcome's records as they were
// before it (no type 33), the golden rejected outcome parses, the digest
// kept as an unknown odd record; and an outcome without it is unchanged.
func TestOutcomeDigestIsOptional(t *testing.T) {
	b := readGolden(t, "hold_outcome_rejected")
	var old HoldOutcome
	recs := slices.DeleteFunc(old.records(true), func(r tlv.Record) bool {
		return r.Type() == recReleaseDigest
	})
	parsed, extra, err := decodeTLV(b, MaxHoldOutcomeSize, recs...)
	if err != nil {
		t.Fatalf("an older decoder refuses it: %v", err)
	}
	want := fixtureOutcomeRejected()
	if err := require(parsed, recHoldID, recPaymentHash, recStatus); err != nil ||
		old.Status != want.Status || old.Reason != want.Reason ||
		!bytes.Equal(extra[recReleaseDigest], want.ReleaseDigest[:]) {

		t.Fatalf("older decoder read %+v, extra %x (%v)", old, extra, err)
	}
	m, err := DecodeHoldOutcome(readGolden(t, "hold_outcome"))
	if err != nil || m.ReleaseDigest != ([32]byte{}) {
		t.Fatalf("an outcome without a digest: %+v (%v)", m, err)
	}
	rel := signedRelease(t, receiverSigner)
	raw, err := rel.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := rel.Digest()
	if err != nil || d != ReleaseDigest(raw) || d != sha256.Sum256(raw) {
		t.Fatalf("Digest %x, want sha256 of the stream %x (%v)", d,
			sha256.Sum256(raw), err)
	}
}

// TestEncodeRejects checks encoders refuse what decoders would refuse.
func TestEncodeRejects(t *testing.T) {
	zeroAmount := fixtureInvoiceRequest()
	zeroAmount.Amount = 0
	evenExtra := fixtureOutcome()
	evenExtra.ExtraRecords = tlv.TypeMap{32: nil}
	bigExtra := fixtureHeld()
	bigExtra.ExtraRecords = tlv.TypeMap{1001: make([]byte, 400)}
	badKey := fixtureRelease()
	badKey.SenderLSPKey = NodeKey{}
	before1970 := fixtureRelease()
	before1970.CreatedAt = before1970.CreatedAt.AddDate(-60, 0, 0)
	both := fixtureInvoiceReply()
	both.ErrorCode = ReplyUnknownReceiver
	badStatus := fixtureOutcome()
	badStatus.Status = 9
	longReason := fixtureOutcome()
	longReason.Reason = strings.Repeat("x", MaxReasonLen+1)
	badEnvelope := fixtureEnvelope(t)
	badEnvelope.Type = 99

	cases := []struct {
		name string
		msg  encoder
		want error
	}{
		{"zero amount", zeroAmount, ErrInvalidValue},
		{"even extra record", evenExtra, ErrInvalidValue},
		{"too big", bigExtra, ErrOversize},
		{"zero key", badKey, ErrInvalidKey},
		{"time before 1970", before1970, ErrInvalidValue},
		{"invoice and error", both, ErrConflictingRecords},
		{"unknown status", badStatus, ErrInvalidValue},
		{"reason too long", longReason, ErrWrongLength},
		{"envelope of unknown type", badEnvelope, ErrUnknownMessageType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := c.msg.Encode(); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestOpen checks Open and DecodeMessage name the type they get wrong.
func TestOpen(t *testing.T) {
	e := fixtureEnvelope(t)
	r, err := Open[*ReleaseHeldHTLC](e)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRelease(r, fixtureExpect(), fixtureNow, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Open[*HeldHTLCAvailable](e); !errors.Is(err, ErrWrongMessageType) {
		t.Fatalf("Open as held: got %v, want ErrWrongMessageType", err)
	}
	if _, err := DecodeMessage(99, e.Payload); !errors.Is(err, ErrUnknownMessageType) {
		t.Fatalf("DecodeMessage(99): got %v, want ErrUnknownMessageType", err)
	}
	e.Payload = e.Payload[:10]
	if _, err := Open[*ReleaseHeldHTLC](e); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Open truncated: got %v, want ErrTruncated", err)
	}
}
