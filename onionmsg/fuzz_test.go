package onionmsg

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// namedErrors are the errors every rejection must match one of.
var namedErrors = []error{
	ErrTruncated, ErrOversize, ErrUnknownEvenType, ErrDuplicateType,
	ErrOutOfOrder, ErrNonCanonicalVarInt, ErrWrongLength, ErrMissingRecord,
	ErrConflictingRecords, ErrInvalidValue, ErrUnsupportedVersion,
	ErrUnknownMessageType, ErrWrongMessageType, ErrInvalidKey,
	ErrInvalidSignatureEncoding, ErrBadSignature, ErrWrongKey,
	ErrMisdirected, ErrExpired, ErrFromFuture, ErrInvalidLifetime,
	ErrHoldMismatch, ErrHashMismatch, ErrSecretMismatch, ErrBadLNSignature,
}

func isNamed(err error) bool {
	for _, named := range namedErrors {
		if errors.Is(err, named) {
			return true
		}
	}
	return false
}

// fuzzDecode checks a decoder never panics, rejects only with a named
// error, and accepts only canonical input: what it accepts re-encodes to the
// very same bytes.
func fuzzDecode[T encoder](f *testing.F, decode func([]byte) (T, error)) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			if !isNamed(err) {
				t.Fatalf("rejected with an unnamed error: %v", err)
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x", b, again)
		}
	})
}

func FuzzDecodeInvoiceRequest(f *testing.F) { fuzzDecode(f, DecodeInvoiceRequest) }

func FuzzDecodeInvoiceReply(f *testing.F) { fuzzDecode(f, DecodeInvoiceReply) }

func FuzzDecodeHeldHTLCAvailable(f *testing.F) { fuzzDecode(f, DecodeHeldHTLCAvailable) }

func FuzzDecodeReleaseHeldHTLC(f *testing.F) { fuzzDecode(f, DecodeReleaseHeldHTLC) }

func FuzzDecodeHoldOutcome(f *testing.F) { fuzzDecode(f, DecodeHoldOutcome) }

// FuzzDecodeEnvelope also opens what it decodes: a valid envelope with a
// payload that is not must still fail cleanly.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			if !isNamed(err) {
				t.Fatalf("rejected with an unnamed error: %v", err)
			}
			return
		}
		again, err := e.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x (%v)", b, again, err)
		}
		if _, err := e.Message(); err != nil && !isNamed(err) {
			t.Fatalf("payload rejected with an unnamed error: %v", err)
		}
	})
}

// FuzzVerifyRelease decodes and verifies against the fixture hold, as its
// BIP-340 receiver's and as its ln_signature receiver's. The verifier must
// never panic, must name every refusal, and may accept only a release for
// that hold, signed by its receiver in the release's scheme, inside its
// window.
func FuzzVerifyRelease(f *testing.F) {
	wants := []ReleaseExpect{fixtureExpect(), fixtureExpectLN()}
	f.Fuzz(func(t *testing.T, b []byte, nowUnix int64, skew int64) {
		r, err := DecodeReleaseHeldHTLC(b)
		if err != nil {
			return
		}
		now := time.Unix(nowUnix, 0)
		for _, want := range wants {
			err = VerifyRelease(r, want, now, time.Duration(skew))
			if err != nil {
				if !isNamed(err) {
					t.Fatalf("refused with an unnamed error: %v", err)
				}
				continue
			}
			if r.HoldID != want.HoldID || r.PaymentHash != want.PaymentHash ||
				r.ReleaseSecret != want.ReleaseSecret ||
				r.SenderLSPKey != want.SenderLSPKey ||
				r.ReceiverKey != want.ReceiverKey ||
				!r.ExpiresAt.After(r.CreatedAt) ||
				!signedBy(t, r, want.ReceiverKey) {

				t.Fatalf("accepted a release it should not: %+v", r)
			}
		}
	})
}

// signedBy reports whether r's signature, in its scheme, is key's: checked
// by the generic verifiers, not VerifyRelease.
func signedBy(t *testing.T, r *ReleaseHeldHTLC, key NodeKey) bool {
	if r.Scheme() == SchemeLN {
		msg, err := r.LNMessage()
		if err != nil {
			t.Fatal(err)
		}
		return VerifyLNSignature(msg, EncodeLNSignature(r.LNSignature), key) == nil
	}
	msg, err := r.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	return VerifyTagged([]byte(TagRelease), msg, r.Signature, key) == nil
}

// FuzzReleaseFromLNMessage rebuilds releases from arbitrary texts and
// signatures: it must never panic, must name every refusal, and may accept
// only the text LNMessage writes for the release it returns, which encodes
// and decodes back to itself.
func FuzzReleaseFromLNMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte, sig string) {
		r, err := ReleaseFromLNMessage(msg, sig)
		if err != nil {
			if !isNamed(err) {
				t.Fatalf("refused with an unnamed error: %v", err)
			}
			return
		}
		again, err := r.LNMessage()
		if err != nil || !bytes.Equal(again, msg) {
			t.Fatalf("accepted %q, writes %q (%v)", msg, again, err)
		}
		b, err := r.Encode()
		if err != nil {
			t.Fatalf("accepted a release it cannot encode: %v", err)
		}
		if _, err := DecodeReleaseHeldHTLC(b); err != nil {
			t.Fatalf("accepted a release that does not decode: %v", err)
		}
	})
}

// FuzzVerifyEnvelope decodes and verifies as the fixture's sender LSP.
func FuzzVerifyEnvelope(f *testing.F) {
	want := fixtureEnvelopeExpect()
	f.Fuzz(func(t *testing.T, b []byte, nowUnix int64, skew int64) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		err = VerifyEnvelope(e, want, time.Unix(nowUnix, 0), time.Duration(skew))
		if err != nil {
			if !isNamed(err) {
				t.Fatalf("refused with an unnamed error: %v", err)
			}
			return
		}
		msg, err := e.SignedBytes()
		if err != nil {
			t.Fatal(err)
		}
		if e.From != want.From || e.To != want.To ||
			VerifyTagged([]byte(TagEnvelope), msg, e.Signature, want.From) != nil {

			t.Fatalf("accepted an envelope it should not: %+v", e)
		}
	})
}

// FuzzVerifyTagged feeds arbitrary tags, messages, signatures and keys to
// the generic verifier: it must never panic, and name every refusal.
func FuzzVerifyTagged(f *testing.F) {
	f.Fuzz(func(t *testing.T, tag, msg, sig, key []byte) {
		var s [64]byte
		var k NodeKey
		copy(s[:], sig)
		copy(k[:], key)
		if err := VerifyTagged(tag, msg, s, k); err != nil && !isNamed(err) {
			t.Fatalf("refused with an unnamed error: %v", err)
		}
	})
}

// FuzzRecoverLNSignature feeds arbitrary messages and signature strings to
// ln_signature recovery: it must never panic, must refuse with
// ErrBadLNSignature, and may accept only the one spelling of a signature
// (it re-encodes to the very same string) that then verifies under the
// key it recovered.
func FuzzRecoverLNSignature(f *testing.F) {
	f.Fuzz(func(t *testing.T, msg []byte, sig string) {
		key, err := RecoverLNSignature(msg, sig)
		if err != nil {
			if !errors.Is(err, ErrBadLNSignature) {
				t.Fatalf("refused with another error: %v", err)
			}
			return
		}
		raw, err := ParseLNSignature(sig)
		if err != nil || EncodeLNSignature(raw) != sig {
			t.Fatalf("accepted %q, re-encodes to %q (%v)", sig,
				EncodeLNSignature(raw), err)
		}
		if _, err := key.PubKey(); err != nil {
			t.Fatalf("recovered a key that is not a point: %v", err)
		}
		if err := VerifyLNSignature(msg, sig, key); err != nil {
			t.Fatalf("does not verify under the key it recovers: %v", err)
		}
		low := EncodeLNSignature(lowSLNSignature(raw))
		if err := VerifyLNSignature(msg, low, key); err != nil {
			t.Fatalf("its low-s form does not verify: %v", err)
		}
	})
}

// TestFuzzSeeds checks the seed corpora under testdata/fuzz are those built
// from the golden files, and rewrites them with -update. Plain `go test`
// runs every seed.
func TestFuzzSeeds(t *testing.T) {
	now, skew := fixtureNow.Unix(), int64(30*time.Second)
	release := readGolden(t, "release_held_htlc")
	releaseLN := readGolden(t, "release_held_htlc_ln")
	lnText, lnSig := readGoldenText(t, goldenLNMessage), readGoldenText(t, goldenLNSig)
	envelope := readGolden(t, "envelope")
	seeds := map[string][][]any{
		"FuzzDecodeInvoiceRequest": {
			{readGolden(t, "invoice_request")},
			{edit(t, "invoice_request", addRecord(1001, []byte("x")))},
		},
		"FuzzDecodeInvoiceReply": {
			{readGolden(t, "invoice_reply")},
			{readGolden(t, "invoice_reply_error")},
		},
		"FuzzDecodeHeldHTLCAvailable": {
			{readGolden(t, "held_htlc_available")},
			{edit(t, "held_htlc_available", dropRecord(18))},
		},
		"FuzzDecodeReleaseHeldHTLC": {
			{release},
			{readGolden(t, "release_held_htlc_extra")},
			{release[:len(release)-1]},
			{releaseLN},
			{edit(t, "release_held_htlc", addRecord(242, releaseLN[len(releaseLN)-65:]))},
		},
		"FuzzDecodeHoldOutcome": {
			{readGolden(t, "hold_outcome")},
			{edit(t, "hold_outcome", dropRecord(30))},
			{readGolden(t, "hold_outcome_rejected")},
		},
		"FuzzDecodeEnvelope": {
			{envelope},
			{edit(t, "envelope", setRecord(2, []byte{0, 0, 0, 0, 0, 0, 0, 72}))},
		},
		"FuzzVerifyRelease": {
			{release, now, skew},
			{readGolden(t, "release_held_htlc_extra"), now, skew},
			{release, now + 3600, int64(0)},
			{releaseLN, now, skew},
		},
		"FuzzReleaseFromLNMessage": {
			{[]byte(lnText), lnSig},
			{[]byte(strings.ToUpper(lnText)), lnSig},
			{[]byte(ReleaseMessagePrefix), lnSig},
		},
		"FuzzVerifyEnvelope": {
			{envelope, now, skew},
			{envelope, now - 3600, skew},
		},
		"FuzzRecoverLNSignature": {
			{[]byte(lnVectors[0].msg), lnVectors[0].sig},
			{[]byte(lnVectors[1].msg), lnVectors[1].sig},
			{[]byte(lnVectors[0].msg), strings.ToUpper(lnVectors[0].sig)},
			{[]byte{}, lnVectors[0].sig + "y"},
		},
		"FuzzVerifyTagged": {
			{[]byte(TagRelease), readGolden(t, "release_held_htlc.signed"),
				release[len(release)-64:], receiverKey[:]},
			{[]byte(TagEnvelope), []byte{}, []byte{}, []byte{}},
		},
	}
	for target, corpus := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); *update && err != nil {
			t.Fatal(err)
		}
		for i, args := range corpus {
			var b bytes.Buffer
			b.WriteString("go test fuzz v1\n")
			for _, arg := range args {
				switch v := arg.(type) {
				case []byte:
					fmt.Fprintf(&b, "[]byte(%q)\n", v)
				case int64:
					fmt.Fprintf(&b, "int64(%d)\n", v)
				case string:
					fmt.Fprintf(&b, "string(%q)\n", v)
				}
			}
			path := filepath.Join(dir, fmt.Sprintf("seed-%d", i))
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil ||
				!bytes.Equal(got, b.Bytes()) {

				t.Errorf("%s is stale or missing (run with -update): %v",
					path, err)
			}
		}
	}
}
