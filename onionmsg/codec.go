package onionmsg

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

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
	recReleaseDigest  tlv.Type = 33
	recSignature      tlv.Type = 240
	recLNSignature    tlv.Type = 242
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
	case *[65]byte:
		return v[:]
	}
	return nil
}

// fixedRecord is a record for a fixed-size byte field: a hold or message id,
// a hash or secret, a node key (checked to be on the curve when decoded), a
// Schnorr signature (checked to be in range when decoded) or an ln_signature
// (checked to be in range and low-s when decoded).
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
		if _, err := v.PubKey(); err != nil {
			return err
		}
	case *[64]byte:
		return checkSignatureEncoding(v)
	case *[65]byte:
		return checkLNSignature(v, true)
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
