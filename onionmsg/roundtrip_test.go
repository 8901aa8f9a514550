package onionmsg

import (
	"bytes"
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/tlv"
	"pgregory.net/rapid"
)

func genBytes[A ~[16]byte | ~[32]byte](t *rapid.T, label string) A {
	var a A
	b := rapid.SliceOfN(rapid.Byte(), len(a), len(a)).Draw(t, label)
	return A(b)
}

func genNonZero32(t *rapid.T, label string) [32]byte {
	a := genBytes[[32]byte](t, label)
	if a == [32]byte{} {
		a[31] = 1
	}
	return a
}

func genSigner(t *rapid.T, label string) *PrivKeySigner {
	b := rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label)
	priv, _ := btcec.PrivKeyFromBytes(b)
	if priv.Key.IsZero() {
		priv.Key.SetInt(1)
	}
	return NewPrivKeySigner(priv)
}

func genKey(t *rapid.T, label string) NodeKey {
	return genSigner(t, label).NodeKey()
}

func genTime(t *rapid.T, label string) time.Time {
	return time.Unix(rapid.Int64Range(0, maxUnixSeconds).Draw(t, label), 0).UTC()
}

func genAmount(t *rapid.T) lnwire.MilliSatoshi {
	return lnwire.MilliSatoshi(rapid.Uint64Range(1, 1<<63).Draw(t, "amount"))
}

// genASCII draws printable ASCII of min..max bytes.
func genASCII(t *rapid.T, label string, min, max int) string {
	return string(rapid.SliceOfN(rapid.ByteRange(0x21, 0x7e), min, max).Draw(t, label))
}

// genExtra draws up to three unknown odd records, or nil.
func genExtra(t *rapid.T) tlv.TypeMap {
	m := rapid.MapOfN(
		rapid.Custom(func(t *rapid.T) tlv.Type {
			return tlv.Type(2*rapid.Uint64Range(0, 1<<31).Draw(t, "t") + 1)
		}),
		rapid.SliceOfN(rapid.Byte(), 0, 32), 0, 3,
	).Draw(t, "extra")
	if len(m) == 0 {
		return nil
	}
	return m
}

func genInvoiceRequest(t *rapid.T) *InvoiceRequest {
	return &InvoiceRequest{
		HoldID:       genBytes[HoldID](t, "hold"),
		ReceiverKey:  genKey(t, "receiver"),
		Amount:       genAmount(t),
		MinExpiry:    genTime(t, "min expiry"),
		ExtraRecords: genExtra(t),
	}
}

func genInvoiceReply(t *rapid.T) *InvoiceReply {
	m := &InvoiceReply{HoldID: genBytes[HoldID](t, "hold")}
	if rapid.Bool().Draw(t, "ok") {
		m.Invoice = genASCII(t, "invoice", 1, MaxInvoiceLen)
	} else {
		m.ErrorCode = rapid.SampledFrom([]ReplyErrorCode{
			ReplyUnknownReceiver, ReplyNoInvoicesLeft,
			ReplyAmountOutOfRange,
		}).Draw(t, "code")
		m.ErrorMessage = rapid.StringN(0, -1, MaxErrorMessageLen).Draw(t, "msg")
	}
	m.ExtraRecords = genExtra(t)
	return m
}

func genHeld(t *rapid.T) *HeldHTLCAvailable {
	return &HeldHTLCAvailable{
		HoldID:         genBytes[HoldID](t, "hold"),
		PaymentHash:    genBytes[lntypes.Hash](t, "hash"),
		Amount:         genAmount(t),
		DeadlineHeight: rapid.Uint32().Draw(t, "height"),
		DeadlineTime:   genTime(t, "deadline"),
		SenderLSPKey:   genKey(t, "sender lsp"),
		ReceiverKey:    genKey(t, "receiver"),
		ReleaseSecret:  genNonZero32(t, "secret"),
		ExtraRecords:   genExtra(t),
	}
}

// genRelease draws a release signed by its receiver, in either scheme, and
// that signer.
func genRelease(t *rapid.T) (*ReleaseHeldHTLC, *PrivKeySigner) {
	receiver := genSigner(t, "receiver")
	created := rapid.Int64Range(0, maxUnixSeconds-1).Draw(t, "created")
	expires := rapid.Int64Range(created+1, maxUnixSeconds).Draw(t, "expires")
	r := &ReleaseHeldHTLC{
		HoldID:        genBytes[HoldID](t, "hold"),
		PaymentHash:   genBytes[lntypes.Hash](t, "hash"),
		SenderLSPKey:  genKey(t, "sender lsp"),
		ReceiverKey:   receiver.NodeKey(),
		ReleaseSecret: genNonZero32(t, "secret"),
		CreatedAt:     time.Unix(created, 0).UTC(),
		ExpiresAt:     time.Unix(expires, 0).UTC(),
		ExtraRecords:  genExtra(t),
	}
	sign := func() error { return r.Sign(context.Background(), receiver) }
	if rapid.Bool().Draw(t, "ln_signature") {
		sign = func() error { return r.SignLN(context.Background(), receiver) }
	}
	if err := sign(); err != nil {
		t.Fatal(err)
	}
	return r, receiver
}

func genOutcome(t *rapid.T) *HoldOutcome {
	m := &HoldOutcome{
		HoldID:      genBytes[HoldID](t, "hold"),
		PaymentHash: genBytes[lntypes.Hash](t, "hash"),
		Status: rapid.SampledFrom([]HoldStatus{StatusReleased,
			StatusSettled, StatusCanceled, StatusRejected}).Draw(t, "status"),
		Reason:       genASCII(t, "reason", 0, MaxReasonLen),
		ExtraRecords: genExtra(t),
	}
	if rapid.Bool().Draw(t, "names a release") {
		m.ReleaseDigest = genNonZero32(t, "release digest")
	}
	// release_digest is a known odd record: never an unknown one too.
	delete(m.ExtraRecords, recReleaseDigest)
	if len(m.ExtraRecords) == 0 {
		m.ExtraRecords = nil
	}
	return m
}

func genMessage(t *rapid.T) Message {
	switch rapid.IntRange(0, 4).Draw(t, "kind") {
	case 0:
		return genInvoiceRequest(t)
	case 1:
		return genInvoiceReply(t)
	case 2:
		return genHeld(t)
	case 3:
		r, _ := genRelease(t)
		return r
	default:
		return genOutcome(t)
	}
}

// checkRoundTrip asserts decode(encode(m)) == m, through the message's own
// decoder and through DecodeMessage, and that re-encoding gives the same
// bytes.
func checkRoundTrip[T Message](t *rapid.T, m T, decode func([]byte) (T, error)) {
	b, err := m.Encode()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	got, err := decode(b)
	if err != nil {
		t.Fatalf("decode: %v\n%x", err, b)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", got, m)
	}
	generic, err := DecodeMessage(m.MsgType(), b)
	if err != nil || !reflect.DeepEqual(generic, Message(m)) {
		t.Fatalf("DecodeMessage: %v\n%+v", err, generic)
	}
	again, err := got.Encode()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encode: %v\n%x\nwant\n%x", err, again, b)
	}
}

func TestRoundTripInvoiceRequest(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkRoundTrip(t, genInvoiceRequest(t), DecodeInvoiceRequest)
	})
}

func TestRoundTripInvoiceReply(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkRoundTrip(t, genInvoiceReply(t), DecodeInvoiceReply)
	})
}

func TestRoundTripHeldHTLCAvailable(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkRoundTrip(t, genHeld(t), DecodeHeldHTLCAvailable)
	})
}

func TestRoundTripReleaseHeldHTLC(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := genRelease(t)
		checkRoundTrip(t, r, DecodeReleaseHeldHTLC)
	})
}

func TestRoundTripHoldOutcome(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		checkRoundTrip(t, genOutcome(t), DecodeHoldOutcome)
	})
}

// TestRoundTripEnvelope seals any message, and checks the envelope round
// trips, verifies, and opens to the message.
func TestRoundTripEnvelope(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		from, to := genSigner(t, "from"), genKey(t, "to")
		m := genMessage(t)
		sent := genTime(t, "sent")
		e, err := NewEnvelope(context.Background(), from, from.NodeKey(),
			to, genBytes[MsgID](t, "id"), sent, m)
		if err != nil {
			t.Fatal(err)
		}
		e.ExtraRecords = genExtra(t)
		if err := e.Sign(context.Background(), from); err != nil {
			t.Fatal(err)
		}
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip:\n%+v\nwant\n%+v", got, e)
		}
		want := EnvelopeExpect{From: from.NodeKey(), To: to}
		if err := VerifyEnvelope(got, want, sent, 0); err != nil {
			t.Fatalf("verify: %v", err)
		}
		opened, err := got.Message()
		if err != nil || !reflect.DeepEqual(opened, m) {
			t.Fatalf("open: %v\n%+v\nwant\n%+v", err, opened, m)
		}
	})
}

// TestReleaseVerifiesInWindow checks a signed release verifies at any
// moment of its window, and with a skew on either side.
func TestReleaseVerifiesInWindow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := genRelease(t)
		want := expectFor(r)
		skew := time.Duration(rapid.Int64Range(0, 600).Draw(t, "skew")) * time.Second
		lo := r.CreatedAt.Add(-skew).Unix()
		hi := r.ExpiresAt.Add(skew).Unix() - 1
		now := time.Unix(rapid.Int64Range(lo, hi).Draw(t, "now"), 0)
		if err := VerifyRelease(r, want, now, skew); err != nil {
			t.Fatalf("verify at %v: %v", now, err)
		}
	})
}

// TestReleaseBitFlips checks that no single flipped bit of a signed
// release's encoding yields a release that still verifies.
func TestReleaseBitFlips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r, _ := genRelease(t)
		want := expectFor(r)
		b, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		i := rapid.IntRange(0, len(b)-1).Draw(t, "byte")
		bit := rapid.IntRange(0, 7).Draw(t, "bit")
		b[i] ^= 1 << bit
		got, err := DecodeReleaseHeldHTLC(b)
		if err != nil {
			return
		}
		if err := VerifyRelease(got, want, r.CreatedAt, 0); err == nil {
			t.Fatalf("flipped bit %d of byte %d still verifies", bit, i)
		}
	})
}

// expectFor is what a sender LSP would know of the hold r answers.
func expectFor(r *ReleaseHeldHTLC) ReleaseExpect {
	return ReleaseExpect{
		HoldID:        r.HoldID,
		PaymentHash:   r.PaymentHash,
		ReleaseSecret: r.ReleaseSecret,
		SenderLSPKey:  r.SenderLSPKey,
		ReceiverKey:   r.ReceiverKey,
	}
}
