package onionmsg

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// update rewrites the golden fixtures and the fuzz seed corpora:
// go test ./onionmsg/ -run 'TestGolden|TestFuzzSeeds' -update
var update = flag.Bool("update", false, "rewrite testdata golden files and fuzz seeds")

// encoder is what the golden test needs of a message or an envelope.
type encoder interface {
	Encode() ([]byte, error)
}

// goldenCase is one message pinned by a golden file.
type goldenCase struct {
	name   string
	msg    encoder
	decode func([]byte) (encoder, error)
}

// asEncoder adapts a typed decoder, so that a failed decode yields a nil
// interface and not a typed nil.
func asEncoder[T encoder](f func([]byte) (T, error)) func([]byte) (encoder, error) {
	return func(b []byte) (encoder, error) {
		m, err := f(b)
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}

func goldenCases(t *testing.T) []goldenCase {
	t.Helper()
	extra := fixtureReleaseExtra()
	if err := extra.Sign(t.Context(), receiverSigner); err != nil {
		t.Fatal(err)
	}
	return []goldenCase{
		{"invoice_request", fixtureInvoiceRequest(),
			asEncoder(DecodeInvoiceRequest)},
		{"invoice_reply", fixtureInvoiceReply(),
			asEncoder(DecodeInvoiceReply)},
		{"invoice_reply_error", fixtureInvoiceReplyError(),
			asEncoder(DecodeInvoiceReply)},
		{"held_htlc_available", fixtureHeld(),
			asEncoder(DecodeHeldHTLCAvailable)},
		{"release_held_htlc", signedRelease(t, receiverSigner),
			asEncoder(DecodeReleaseHeldHTLC)},
		{"release_held_htlc_extra", extra,
			asEncoder(DecodeReleaseHeldHTLC)},
		{"release_held_htlc_ln", lnSignedRelease(t),
			asEncoder(DecodeReleaseHeldHTLC)},
		{"hold_outcome", fixtureOutcome(), asEncoder(DecodeHoldOutcome)},
		{"hold_outcome_rejected", fixtureOutcomeRejected(),
			asEncoder(DecodeHoldOutcome)},
		{"envelope", fixtureEnvelope(t), asEncoder(DecodeEnvelope)},
	}
}

func goldenPath(name string) string {
	return filepath.Join("testdata", "golden", name+".hex")
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	return readGoldenB(t, name)
}

// readGoldenB reads a golden file for a test or a benchmark.
func readGoldenB(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	return mustHex(t, strings.TrimSpace(string(text)))
}

func writeGolden(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(goldenPath(name)), 0o755); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(goldenPath(name), []byte(hex.EncodeToString(b)+"\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
}

// TestGolden pins the wire format: every fixture encodes to its golden
// bytes, and the golden bytes decode to the fixture and re-encode unchanged.
// Signatures are taken from the golden file and verified, so the test does
// not depend on the signer's nonce derivation.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if *update {
				b, err := c.msg.Encode()
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				writeGolden(t, c.name, b)
				return
			}
			want := readGolden(t, c.name)
			decoded, err := c.decode(want)
			if err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			adoptSignature(t, c.msg, decoded)
			if !reflect.DeepEqual(decoded, c.msg) {
				t.Fatalf("golden decodes to\n%+v\nwant\n%+v", decoded, c.msg)
			}
			got, err := c.msg.Encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("fixture encodes to\n%x\ngolden is\n%x", got, want)
			}
			again, err := decoded.Encode()
			if err != nil || !bytes.Equal(again, want) {
				t.Fatalf("re-encode: %v\n%x\nwant\n%x", err, again, want)
			}
		})
	}
}

// adoptSignature copies the golden message's signature into the fixture,
// after checking it verifies.
func adoptSignature(t *testing.T, fixture, golden encoder) {
	t.Helper()
	switch f := fixture.(type) {
	case *ReleaseHeldHTLC:
		g := golden.(*ReleaseHeldHTLC)
		want := fixtureExpect()
		if g.Scheme() == SchemeLN {
			want = fixtureExpectLN()
		}
		err := VerifyRelease(g, want, fixtureNow, 0)
		if err != nil {
			t.Fatalf("golden release does not verify: %v", err)
		}
		f.Signature, f.LNSignature = g.Signature, g.LNSignature
	case *Envelope:
		g := golden.(*Envelope)
		err := VerifyEnvelope(g, fixtureEnvelopeExpect(), fixtureNow, 0)
		if err != nil {
			t.Fatalf("golden envelope does not verify: %v", err)
		}
		f.Signature = g.Signature
	}
}

// TestGoldenSigning pins the bytes a wallet signs and their tagged digest,
// for the release and the envelope: the worked examples doc.go points at.
func TestGoldenSigning(t *testing.T) {
	rel := fixtureRelease()
	relBytes, err := rel.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	env := fixtureEnvelope(t)
	envBytes, err := env.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	relDigest := TaggedDigest([]byte(TagRelease), relBytes)
	envDigest := TaggedDigest([]byte(TagEnvelope), envBytes)
	cases := map[string][]byte{
		"release_held_htlc.signed": relBytes,
		"release_held_htlc.digest": relDigest[:],
		"envelope.signed":          envBytes,
		"envelope.digest":          envDigest[:],
	}
	for name, got := range cases {
		if *update {
			writeGolden(t, name, got)
			continue
		}
		if want := readGolden(t, name); !bytes.Equal(got, want) {
			t.Errorf("%s:\n%x\nwant\n%x", name, got, want)
		}
	}
	if *update {
		return
	}

	// The signed bytes are the full golden stream less its last record,
	// the 66-byte signature record (type 240, length 64).
	full := readGolden(t, "release_held_htlc")
	if !bytes.Equal(full[:len(full)-66], relBytes) ||
		!bytes.Equal(full[len(full)-66:len(full)-64], []byte{240, 64}) {

		t.Errorf("release signed bytes are not the stream without its signature")
	}
}
