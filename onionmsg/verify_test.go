package onionmsg

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestVerifyRelease checks every reason VerifyRelease refuses a release,
// each with its specific error, and the edges of the time window.
func TestVerifyRelease(t *testing.T) {
	const skew = 30 * time.Second
	ctx := context.Background()
	good := signedRelease(t, receiverSigner)
	created, expires := good.CreatedAt, good.ExpiresAt

	// resigned returns the fixture release changed by f and signed by s.
	resigned := func(s Signer, f func(*ReleaseHeldHTLC)) *ReleaseHeldHTLC {
		r := fixtureRelease()
		f(r)
		if err := r.Sign(ctx, s); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// tampered returns the good release changed by f after signing.
	tampered := func(f func(*ReleaseHeldHTLC)) *ReleaseHeldHTLC {
		r := *good
		f(&r)
		return &r
	}
	// expect returns the fixture expectation changed by f.
	expect := func(f func(*ReleaseExpect)) ReleaseExpect {
		e := fixtureExpect()
		f(&e)
		return e
	}
	envelopeTagged := fixtureRelease()
	msg, _ := envelopeTagged.SignedBytes()
	envelopeTagged.Signature, _ = receiverSigner.SignTagged(ctx, []byte(TagEnvelope), msg)

	cases := []struct {
		name string
		r    *ReleaseHeldHTLC
		want ReleaseExpect
		now  time.Time
		skew time.Duration
		err  error
	}{
		{"valid", good, fixtureExpect(), created, skew, nil},
		{"valid at last second", good, fixtureExpect(), expires.Add(skew - time.Second), skew, nil},
		{"valid at skew before creation", good, fixtureExpect(), created.Add(-skew), skew, nil},
		{"expired", good, fixtureExpect(), expires.Add(skew), skew, ErrExpired},
		{"expired, no skew", good, fixtureExpect(), expires, 0, ErrExpired},
		{"from the future", good, fixtureExpect(), created.Add(-skew - time.Second), skew, ErrFromFuture},
		{"negative skew is zero", good, fixtureExpect(), created.Add(-time.Second), -time.Hour, ErrFromFuture},

		{"for another sender LSP", good, expect(func(e *ReleaseExpect) { e.SenderLSPKey = otherKey }), created, skew, ErrMisdirected},
		{"naming another sender LSP", resigned(receiverSigner, func(r *ReleaseHeldHTLC) { r.SenderLSPKey = otherKey }), fixtureExpect(), created, skew, ErrMisdirected},
		{"by another receiver", resigned(otherSigner, func(r *ReleaseHeldHTLC) { r.ReceiverKey = otherKey }), fixtureExpect(), created, skew, ErrWrongKey},
		{"claiming the receiver, signed by another", resigned(otherSigner, func(*ReleaseHeldHTLC) {}), fixtureExpect(), created, skew, ErrBadSignature},
		{"another hold", good, expect(func(e *ReleaseExpect) { e.HoldID[0] ^= 1 }), created, skew, ErrHoldMismatch},
		{"another hash", good, expect(func(e *ReleaseExpect) { e.PaymentHash[31] ^= 1 }), created, skew, ErrHashMismatch},
		{"another secret", good, expect(func(e *ReleaseExpect) { e.ReleaseSecret[7] ^= 1 }), created, skew, ErrSecretMismatch},
		{"expires before created", resigned(receiverSigner, func(r *ReleaseHeldHTLC) { r.ExpiresAt = r.CreatedAt }), fixtureExpect(), created, skew, ErrInvalidLifetime},

		{"expiry pushed after signing", tampered(func(r *ReleaseHeldHTLC) { r.ExpiresAt = r.ExpiresAt.Add(time.Hour) }), fixtureExpect(), created, skew, ErrBadSignature},
		{"signature byte flipped", tampered(func(r *ReleaseHeldHTLC) { r.Signature[40] ^= 1 }), fixtureExpect(), created, skew, ErrBadSignature},
		{"signature out of range", tampered(func(r *ReleaseHeldHTLC) { r.Signature = [64]byte(mustHex(t, sOverflow)) }), fixtureExpect(), created, skew, ErrInvalidSignatureEncoding},
		{"signed under the envelope tag", envelopeTagged, fixtureExpect(), created, skew, ErrBadSignature},
		{"unsigned", fixtureRelease(), fixtureExpect(), created, skew, ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyRelease(c.r, c.want, c.now, c.skew)
			if c.err == nil && err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
		})
	}
}

// TestVerifyEnvelope checks every reason VerifyEnvelope refuses an envelope.
func TestVerifyEnvelope(t *testing.T) {
	const skew = 30 * time.Second
	ctx := context.Background()
	good := fixtureEnvelope(t)

	changed := func(f func(*Envelope)) *Envelope {
		e := *good
		f(&e)
		return &e
	}
	forged := changed(func(e *Envelope) {
		if err := e.Sign(ctx, otherSigner); err != nil {
			t.Fatal(err)
		}
	})
	otherTo := changed(func(e *Envelope) {
		e.To = otherKey
		if err := e.Sign(ctx, receiverLSPSigner); err != nil {
			t.Fatal(err)
		}
	})
	fromOther := changed(func(e *Envelope) {
		e.From = otherKey
		if err := e.Sign(ctx, otherSigner); err != nil {
			t.Fatal(err)
		}
	})

	cases := []struct {
		name string
		e    *Envelope
		want EnvelopeExpect
		now  time.Time
		err  error
	}{
		{"valid", good, fixtureEnvelopeExpect(), fixtureNow, nil},
		{"valid days later", good, fixtureEnvelopeExpect(), fixtureNow.Add(72 * time.Hour), nil},
		{"valid within skew", good, fixtureEnvelopeExpect(), fixtureNow.Add(-skew), nil},
		{"from the future", good, fixtureEnvelopeExpect(), fixtureNow.Add(-skew - time.Second), ErrFromFuture},
		{"for another LSP", otherTo, fixtureEnvelopeExpect(), fixtureNow, ErrMisdirected},
		{"we are another LSP", good, EnvelopeExpect{From: receiverLSPKey, To: otherKey}, fixtureNow, ErrMisdirected},
		{"from another LSP", fromOther, fixtureEnvelopeExpect(), fixtureNow, ErrWrongKey},
		{"forged by another key", forged, fixtureEnvelopeExpect(), fixtureNow, ErrBadSignature},
		{"payload changed", changed(func(e *Envelope) { e.Payload = fixtureEnvelope(t).Payload[:40] }), fixtureEnvelopeExpect(), fixtureNow, ErrBadSignature},
		{"type changed", changed(func(e *Envelope) { e.Type = TypeHoldOutcome }), fixtureEnvelopeExpect(), fixtureNow, ErrBadSignature},
		{"id changed", changed(func(e *Envelope) { e.ID[0] ^= 1 }), fixtureEnvelopeExpect(), fixtureNow, ErrBadSignature},
		{"version 2", changed(func(e *Envelope) { e.Version = 2 }), fixtureEnvelopeExpect(), fixtureNow, ErrUnsupportedVersion},
		{"signature out of range", changed(func(e *Envelope) { e.Signature = [64]byte(mustHex(t, rOverflow)) }), fixtureEnvelopeExpect(), fixtureNow, ErrInvalidSignatureEncoding},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyEnvelope(c.e, c.want, c.now, skew)
			if c.err == nil && err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
		})
	}
}

// TestNewRelease checks a release answering a held_htlc_available repeats
// what it must and is valid for its ttl.
func TestNewRelease(t *testing.T) {
	h := fixtureHeld()
	r := NewRelease(h, fixtureNow.Add(1500*time.Millisecond), 10*time.Minute)
	if r.HoldID != h.HoldID || r.PaymentHash != h.PaymentHash ||
		r.SenderLSPKey != h.SenderLSPKey || r.ReceiverKey != h.ReceiverKey ||
		r.ReleaseSecret != h.ReleaseSecret {
		t.Fatalf("release does not repeat the held message: %+v", r)
	}
	if !r.CreatedAt.Equal(fixtureNow.Add(time.Second)) ||
		r.ExpiresAt.Sub(r.CreatedAt) != 10*time.Minute {
		t.Fatalf("window %v..%v", r.CreatedAt, r.ExpiresAt)
	}
}

// TestTextForms checks the hex forms of ids and keys round trip, and that a
// key's text form is checked.
func TestTextForms(t *testing.T) {
	id := NewHoldID()
	text, _ := id.MarshalText()
	var back HoldID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("hold id: %v %v", err, back)
	}
	if parsed, err := ParseHoldID(id.String()); err != nil || parsed != id {
		t.Fatalf("ParseHoldID: %v", err)
	}
	if _, err := ParseHoldID("00"); err == nil {
		t.Fatal("short hold id accepted")
	}
	msgID := NewMsgID()
	text, _ = msgID.MarshalText()
	var msgBack MsgID
	if err := msgBack.UnmarshalText(text); err != nil || msgBack != msgID {
		t.Fatalf("msg id: %v", err)
	}
	var k NodeKey
	if err := k.UnmarshalText([]byte(receiverKey.String())); err != nil || k != receiverKey {
		t.Fatalf("node key: %v", err)
	}
	if err := k.UnmarshalText([]byte(notOnCurve)); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("off-curve key: got %v, want ErrInvalidKey", err)
	}
	if _, err := ParseNodeKey("zz"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("bad hex key: got %v, want ErrInvalidKey", err)
	}
	if NewReleaseSecret() == NewReleaseSecret() {
		t.Fatal("two equal random secrets")
	}
}
