package onionmsg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/lightningnetwork/lnd/tlv"
)

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
