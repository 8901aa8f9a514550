package onionmsg

import (
	"testing"
)

// benchCodec benchmarks encoding and decoding of one golden message.
func benchCodec[T encoder](b *testing.B, golden string, decode func([]byte) (T, error)) {
	raw := readGoldenB(b, golden)
	m, err := decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decode(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkInvoiceRequest(b *testing.B) {
	benchCodec(b, "invoice_request", DecodeInvoiceRequest)
}

func BenchmarkInvoiceReply(b *testing.B) {
	benchCodec(b, "invoice_reply", DecodeInvoiceReply)
}

func BenchmarkHeldHTLCAvailable(b *testing.B) {
	benchCodec(b, "held_htlc_available", DecodeHeldHTLCAvailable)
}

func BenchmarkHoldOutcome(b *testing.B) {
	benchCodec(b, "hold_outcome", DecodeHoldOutcome)
}

// BenchmarkReleaseHeldHTLC covers the release hot path: decode, verify, and
// both together as the sender LSP runs them.
func BenchmarkReleaseHeldHTLC(b *testing.B) {
	benchCodec(b, "release_held_htlc", DecodeReleaseHeldHTLC)
	raw := readGoldenB(b, "release_held_htlc")
	r, err := DecodeReleaseHeldHTLC(raw)
	if err != nil {
		b.Fatal(err)
	}
	want := fixtureExpect()
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := VerifyRelease(r, want, fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := DecodeReleaseHeldHTLC(raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyRelease(r, want, fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		ctx := b.Context()
		for b.Loop() {
			if err := r.Sign(ctx, receiverSigner); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkReleaseLN is the release hot path for a release signed as an
// ln_signature: key recovery in place of a Schnorr verification.
func BenchmarkReleaseLN(b *testing.B) {
	raw := readGoldenB(b, "release_held_htlc_ln")
	want := fixtureExpectLN()
	b.Run("decode+verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := DecodeReleaseHeldHTLC(raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyRelease(r, want, fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		r := fixtureReleaseLN()
		ctx := b.Context()
		for b.Loop() {
			if err := r.SignLN(ctx, lnReceiverSigner); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEnvelope covers the envelope carrying a release: what a sender
// LSP does with each release that arrives (decode, verify, open).
func BenchmarkEnvelope(b *testing.B) {
	benchCodec(b, "envelope", DecodeEnvelope)
	raw := readGoldenB(b, "envelope")
	e, err := DecodeEnvelope(raw)
	if err != nil {
		b.Fatal(err)
	}
	want := fixtureEnvelopeExpect()
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := VerifyEnvelope(e, want, fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("release-path", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := DecodeEnvelope(raw)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyEnvelope(e, want, fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
			r, err := Open[*ReleaseHeldHTLC](e)
			if err != nil {
				b.Fatal(err)
			}
			if err := VerifyRelease(r, fixtureExpect(), fixtureNow, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyTagged is the bare signature check.
func BenchmarkVerifyTagged(b *testing.B) {
	msg := []byte("release bytes")
	sig, err := receiverSigner.SignTagged(b.Context(), []byte(TagRelease), msg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyTagged([]byte(TagRelease), msg, sig, receiverKey); err != nil {
			b.Fatal(err)
		}
	}
}
