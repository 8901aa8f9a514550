package onionmsg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tlv"
)

// Record types of the message payloads. One numbering serves every message,
// so a field has the same type wherever it appears; doc.go lists which
// message carries which.
const (
	recHoldID         tlv.Type = 0
	recPaymentHash    tlv.Type = 2
	recAmount         tlv.Type = 4
	recSenderLSPKey   tlv.Type = 6
	recReceiverKey    tlv.Type = 8
	recReleaseSecret  tlv.Type = 10
	recCreatedAt      tlv.Type = 12
	recExpiresAt      tlv.Type = 14
	recDeadlineHeight tlv.Type = 16
	recDeadlineTime   tlv.Type = 18
	recMinExpiry      tlv.Type = 20
	recInvoice        tlv.Type = 22
	recErrorCode      tlv.Type = 24
	recErrorMessage   tlv.Type = 26
	recStatus         tlv.Type = 28
	recReason         tlv.Type = 30
	recSignature      tlv.Type = 240
)

// fixedBytes returns the bytes behind a pointer to one of the fixed-size
// field types, or nil for any other value.
func fixedBytes(val any) []byte {
	switch v := val.(type) {
	case *HoldID:
		return v[:]
	case *MsgID:
		return v[:]
	case *lntypes.Hash:
		return v[:]
	case *[32]byte:
		return v[:]
	case *NodeKey:
		return v[:]
	case *[64]byte:
		return v[:]
	}
	return nil
}

// fixedRecord is a record for a fixed-size byte field: a hold or message id,
// a hash or secret, a node key (checked to be on the curve when decoded) or a
// Schnorr signature (checked to be in range when decoded).
func fixedRecord(typ tlv.Type, val any) tlv.Record {
	return tlv.MakeStaticRecord(
		typ, val, uint64(len(fixedBytes(val))), encFixed, decFixed,
	)
}

func encFixed(w io.Writer, val any, _ *[8]byte) error {
	_, err := w.Write(fixedBytes(val))
	return err
}

func decFixed(r io.Reader, val any, _ *[8]byte, l uint64) error {
	b := fixedBytes(val)
	if l != uint64(len(b)) {
		return fmt.Errorf("%w: %d bytes for a %d-byte field", ErrWrongLength,
			l, len(b))
	}
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	switch v := val.(type) {
	case *NodeKey:
		if _, err := btcec.ParsePubKey(v[:]); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
	case *[64]byte:
		return checkSignatureEncoding(v)
	}
	return nil
}

// uintWidth returns the width of the big-endian integer behind val: u8, u16,
// u32 or u64 (amounts, unix times and message types are u64).
func uintWidth(val any) int {
	switch val.(type) {
	case *uint8, *HoldStatus:
		return 1
	case *ReplyErrorCode:
		return 2
	case *uint32:
		return 4
	case *uint64, *lnwire.MilliSatoshi, *time.Time, *MsgType:
		return 8
	}
	return 0
}

// uintRecord is a record for a fixed-width big-endian unsigned integer. A
// time.Time travels as u64 unix seconds.
func uintRecord(typ tlv.Type, val any) tlv.Record {
	return tlv.MakeStaticRecord(
		typ, val, uint64(uintWidth(val)), encUint, decUint,
	)
}

func encUint(w io.Writer, val any, buf *[8]byte) error {
	var v uint64
	switch p := val.(type) {
	case *uint8:
		v = uint64(*p)
	case *HoldStatus:
		v = uint64(*p)
	case *ReplyErrorCode:
		v = uint64(*p)
	case *uint32:
		v = uint64(*p)
	case *uint64:
		v = *p
	case *lnwire.MilliSatoshi:
		v = uint64(*p)
	case *MsgType:
		v = uint64(*p)
	case *time.Time:
		v = uint64(p.Unix()) // validate() rejects times before 1970.
	}
	n := uintWidth(val)
	binary.BigEndian.PutUint64(buf[:], v<<(64-8*n))
	_, err := w.Write(buf[:n])
	return err
}

func decUint(r io.Reader, val any, buf *[8]byte, l uint64) error {
	n := uintWidth(val)
	if l != uint64(n) {
		return fmt.Errorf("%w: %d bytes for a %d-byte integer",
			ErrWrongLength, l, n)
	}
	clear(buf[:])
	if _, err := io.ReadFull(r, buf[8-n:]); err != nil {
		return err
	}
	v := binary.BigEndian.Uint64(buf[:])
	switch p := val.(type) {
	case *uint8:
		*p = uint8(v)
	case *HoldStatus:
		*p = HoldStatus(v)
	case *ReplyErrorCode:
		*p = ReplyErrorCode(v)
	case *uint32:
		*p = uint32(v)
	case *uint64:
		*p = v
	case *lnwire.MilliSatoshi:
		*p = lnwire.MilliSatoshi(v)
	case *MsgType:
		*p = MsgType(v)
	case *time.Time:
		if v > maxUnixSeconds {
			return fmt.Errorf("%w: unix time %d out of range",
				ErrInvalidValue, v)
		}
		*p = time.Unix(int64(v), 0).UTC()
	}
	return nil
}

// maxUnixSeconds bounds the times we accept: the year 9999, past which
// nothing this code does is meaningful and time arithmetic would overflow.
const maxUnixSeconds = 253402300799

// stringRecord is a record for a text field of at most max bytes.
func stringRecord(typ tlv.Type, s *string, max int) tlv.Record {
	return tlv.MakeDynamicRecord(
		typ, s, func() uint64 { return uint64(len(*s)) },
		func(w io.Writer, _ any, _ *[8]byte) error {
			_, err := io.WriteString(w, *s)
			return err
		},
		func(r io.Reader, _ any, _ *[8]byte, l uint64) error {
			if l > uint64(max) {
				return fmt.Errorf("%w: %d bytes of text, at most %d",
					ErrWrongLength, l, max)
			}
			b := make([]byte, l)
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			*s = string(b)
			return nil
		},
	)
}

// bytesRecord is a record for a byte string of at most max bytes.
func bytesRecord(typ tlv.Type, p *[]byte, max int) tlv.Record {
	return tlv.MakeDynamicRecord(
		typ, p, func() uint64 { return uint64(len(*p)) },
		func(w io.Writer, _ any, _ *[8]byte) error {
			_, err := w.Write(*p)
			return err
		},
		func(r io.Reader, _ any, _ *[8]byte, l uint64) error {
			if l > uint64(max) {
				return fmt.Errorf("%w: %d bytes, at most %d",
					ErrWrongLength, l, max)
			}
			b := make([]byte, l)
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			*p = b
			return nil
		},
	)
}

// encodeTLV writes the records, and the unknown odd records kept from a
// decode, as one canonical TLV stream of at most max bytes.
func encodeTLV(recs []tlv.Record, extra tlv.TypeMap, max int) ([]byte, error) {
	if len(extra) > 0 {
		for typ, v := range extra {
			if typ%2 == 0 {
				return nil, fmt.Errorf("%w: extra record type %d "+
					"is even", ErrInvalidValue, typ)
			}
			recs = append(recs, tlv.MakeStaticRecord(
				typ, nil, uint64(len(v)), tlv.StubEncoder(v), nil,
			))
		}
		tlv.SortRecords(recs)
	}
	stream, err := tlv.NewStream(recs...)
	if err != nil {
		return nil, err
	}
	size := 0
	for i := range recs {
		l := recs[i].Size()
		size += int(tlv.VarIntSize(uint64(recs[i].Type())) +
			tlv.VarIntSize(l) + l)
	}
	if size > max {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrOversize,
			size, max)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if err := stream.Encode(buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeTLV reads b into the records. It returns the types that were present
// and the unknown odd records, and rejects everything a strict decoder must:
// an input over max bytes, truncation, unknown even types, duplicate or
// unordered types, non-minimal varints, wrong lengths and bad values.
func decodeTLV(b []byte, max int, recs ...tlv.Record) (tlv.TypeMap,
	tlv.TypeMap, error) {

	if len(b) > max {
		return nil, nil, fmt.Errorf("%w: %d bytes, at most %d",
			ErrOversize, len(b), max)
	}
	if err := scanFraming(b); err != nil {
		return nil, nil, err
	}
	stream, err := tlv.NewStream(recs...)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := stream.DecodeWithParsedTypesP2P(bytes.NewReader(b))
	if err != nil {
		return nil, nil, decodeError(err)
	}
	var extra tlv.TypeMap
	for typ, v := range parsed {
		if v == nil {
			continue // A known record, decoded.
		}
		if typ%2 == 0 {
			return nil, nil, fmt.Errorf("%w: %d", ErrUnknownEvenType,
				lowestUnknownEven(parsed))
		}
		if extra == nil {
			extra = make(tlv.TypeMap)
		}
		extra[typ] = v
	}
	return parsed, extra, nil
}

// lowestUnknownEven names the lowest unknown even type, so that the error
// for a given input is always the same.
func lowestUnknownEven(parsed tlv.TypeMap) tlv.Type {
	var types []tlv.Type
	for typ, v := range parsed {
		if v != nil && typ%2 == 0 {
			types = append(types, typ)
		}
	}
	return slices.Min(types)
}

// require checks that every one of types was present.
func require(parsed tlv.TypeMap, types ...tlv.Type) error {
	for _, typ := range types {
		if _, ok := parsed[typ]; !ok {
			return fmt.Errorf("%w: type %d", ErrMissingRecord, typ)
		}
	}
	return nil
}

// has reports whether a record of type typ was present.
func has(parsed tlv.TypeMap, typ tlv.Type) bool {
	_, ok := parsed[typ]
	return ok
}

// scanFraming walks the records of b without decoding them and rejects bad
// framing: a type or length that is cut short or not minimally encoded
// (ErrTruncated, ErrNonCanonicalVarInt), a value longer than what is left
// (ErrTruncated), a type repeated (ErrDuplicateType) or lower than the one
// before (ErrOutOfOrder). The tlv package would catch these too, but only
// after allocating a buffer of the declared length for an unknown record,
// and without telling a duplicate from a reordering.
func scanFraming(b []byte) error {
	var prev uint64
	for first := true; len(b) > 0; first = false {
		typ, n, err := readBigSize(b)
		if err != nil {
			return fmt.Errorf("%w: record type", err)
		}
		b = b[n:]
		switch {
		case !first && typ == prev:
			return fmt.Errorf("%w: %d", ErrDuplicateType, typ)
		case !first && typ < prev:
			return fmt.Errorf("%w: %d after %d", ErrOutOfOrder, typ, prev)
		}
		prev = typ
		l, n, err := readBigSize(b)
		if err != nil {
			return fmt.Errorf("%w: length of record %d", err, typ)
		}
		b = b[n:]
		if l > uint64(len(b)) {
			return fmt.Errorf("%w: record %d of %d bytes, %d left",
				ErrTruncated, typ, l, len(b))
		}
		b = b[l:]
	}
	return nil
}

// readBigSize reads one BigSize varint (BOLT 1) from the front of b and
// returns it with the number of bytes it took.
func readBigSize(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, ErrTruncated
	}
	var (
		n   int
		min uint64
	)
	switch b[0] {
	case 0xfd:
		n, min = 3, 0xfd
	case 0xfe:
		n, min = 5, 0x10000
	case 0xff:
		n, min = 9, 0x100000000
	default:
		return uint64(b[0]), 1, nil
	}
	if len(b) < n {
		return 0, 0, ErrTruncated
	}
	var buf [8]byte
	copy(buf[8-(n-1):], b[1:n])
	v := binary.BigEndian.Uint64(buf[:])
	if v < min {
		return 0, 0, ErrNonCanonicalVarInt
	}
	return v, n, nil
}

// decodeError maps the tlv package's errors onto ours. After scanFraming
// only value errors remain; errors our own record decoders return pass
// through.
func decodeError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	case errors.Is(err, tlv.ErrRecordTooLarge):
		return fmt.Errorf("%w: %w", ErrTruncated, err)
	case errors.Is(err, tlv.ErrVarIntNotCanonical):
		return fmt.Errorf("%w: %w", ErrNonCanonicalVarInt, err)
	case errors.Is(err, tlv.ErrStreamNotCanonical):
		return fmt.Errorf("%w: %w", ErrOutOfOrder, err)
	}
	return err
}

// validNodeKey does the cheap checks an encoder makes on a node key: not
// zero, and a compressed-point prefix. Decoders check the point itself.
func validNodeKey(name string, k NodeKey) error {
	if k[0] != 0x02 && k[0] != 0x03 {
		return fmt.Errorf("%w: %s is not a compressed key", ErrInvalidKey,
			name)
	}
	return nil
}

// validTime checks that t can travel as u64 unix seconds.
func validTime(name string, t time.Time) error {
	if s := t.Unix(); s < 0 || s > maxUnixSeconds {
		return fmt.Errorf("%w: %s %v out of range", ErrInvalidValue, name, t)
	}
	return nil
}
