package onionmsg

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The golden text files of the ln_signature release: the exact text its
// receiver signs, and the signature secret key 1 makes over it.
const (
	goldenLNMessage = "release_held_htlc_ln.message.txt"
	goldenLNSig     = "release_held_htlc_ln.sig.txt"
)

// readGoldenText reads a golden text file: its one line, without the
// newline.
func readGoldenText(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func writeGoldenText(t testing.TB, name, text string) {
	t.Helper()
	err := os.WriteFile(filepath.Join("testdata", "golden", name), []byte(text+"\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
}

// TestGoldenLNRelease pins the ln_signature release: the text its receiver
// signs, byte for byte, and the signature secret key 1 makes over it
// (RFC 6979, so anyone can recompute it); the text and signature, as a
// wallet that signs text hands them back, rebuild the golden release,
// which decodes and verifies.
func TestGoldenLNRelease(t *testing.T) {
	r := fixtureReleaseLN()
	msg, err := r.LNMessage()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := lnReceiverSigner.SignMessage(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		writeGoldenText(t, goldenLNMessage, string(msg))
		writeGoldenText(t, goldenLNSig, sig)
		return
	}
	wantMsg, wantSig := readGoldenText(t, goldenLNMessage), readGoldenText(t, goldenLNSig)
	if string(msg) != wantMsg {
		t.Fatalf("LNMessage:\n%s\nwant\n%s", msg, wantMsg)
	}
	if sig != wantSig {
		t.Fatalf("signature %s, want %s", sig, wantSig)
	}

	// The text is the prefix and the lowercase hex of the signed bytes,
	// and the release those bytes and record 242 (0xf2, length 65 = 0x41)
	// with the signature's 65 bytes.
	signed, err := r.SignedBytes()
	if err != nil {
		t.Fatal(err)
	}
	if wantMsg != ReleaseMessagePrefix+hex.EncodeToString(signed) {
		t.Fatalf("the text is not the prefix and the hex of the signed bytes")
	}
	raw, err := ParseLNSignature(wantSig)
	if err != nil {
		t.Fatal(err)
	}
	golden := readGolden(t, "release_held_htlc_ln")
	want := append(append(bytes.Clone(signed), 0xf2, 0x41), raw[:]...)
	if !bytes.Equal(golden, want) {
		t.Fatalf("golden release is not the signed bytes and record 242:\n%x\nwant\n%x", golden, want)
	}

	got, err := ReleaseFromLNMessage([]byte(wantMsg), wantSig)
	if err != nil {
		t.Fatalf("from text: %v", err)
	}
	b, err := got.Encode()
	if err != nil || !bytes.Equal(b, golden) {
		t.Fatalf("from text encodes to\n%x (%v)\nwant\n%x", b, err, golden)
	}
	decoded, err := DecodeReleaseHeldHTLC(golden)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Scheme() != SchemeLN || decoded.Signature != ([64]byte{}) {
		t.Fatalf("decoded as %v, BIP-340 signature %x", decoded.Scheme(), decoded.Signature)
	}
	if err := VerifyRelease(decoded, fixtureExpectLN(), fixtureNow, 0); err != nil {
		t.Fatalf("verify: %v", err)
	}
	key, err := RecoverLNSignature([]byte(wantMsg), wantSig)
	if err != nil || key != lnReceiverSigner.NodeKey() {
		t.Fatalf("the golden signature recovers %v (%v)", key, err)
	}
}

// TestVerifyReleaseLN checks VerifyRelease on ln_signature releases: a
// genuine one passes; a forged, wrong-key, mangled, malleated or
// tampered one is refused with its specific error.
func TestVerifyReleaseLN(t *testing.T) {
	ctx := context.Background()
	good := lnSignedRelease(t)
	now := good.CreatedAt

	// signedBy returns fixtureReleaseLN changed by f and signed by s.
	signedBy := func(s MessageSigner, f func(*ReleaseHeldHTLC)) *ReleaseHeldHTLC {
		r := fixtureReleaseLN()
		f(r)
		if err := r.SignLN(ctx, s); err != nil {
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
	// overBytes signs the signed bytes themselves, not the text.
	overBytes := fixtureReleaseLN()
	signed, _ := overBytes.SignedBytes()
	sig, _ := lnReceiverSigner.SignMessage(ctx, signed)
	overBytes.LNSignature, _ = ParseLNSignature(sig)

	cases := []struct {
		name string
		r    *ReleaseHeldHTLC
		err  error
	}{
		{"valid", good, nil},
		{"forged: signed by another key", signedBy(otherSigner, func(*ReleaseHeldHTLC) {}), ErrBadSignature},
		{"by another receiver", signedBy(otherSigner, func(r *ReleaseHeldHTLC) { r.ReceiverKey = otherKey }), ErrWrongKey},
		{"r changed", tampered(func(r *ReleaseHeldHTLC) { r.LNSignature[5] ^= 1 }), ErrBadSignature},
		{"recovery code changed", tampered(func(r *ReleaseHeldHTLC) { r.LNSignature[0] ^= 1 }), ErrBadSignature},
		{"high-s twin", tampered(func(r *ReleaseHeldHTLC) { r.LNSignature = highS(r.LNSignature) }), ErrInvalidSignatureEncoding},
		{"uncompressed header", tampered(func(r *ReleaseHeldHTLC) { r.LNSignature[0] -= 4 }), ErrInvalidSignatureEncoding},
		{"expiry pushed after signing", tampered(func(r *ReleaseHeldHTLC) { r.ExpiresAt = r.ExpiresAt.Add(time.Hour) }), ErrBadSignature},
		{"both signatures", tampered(func(r *ReleaseHeldHTLC) { r.Signature[0] = 1 }), ErrConflictingRecords},
		{"over the bytes, not the text", overBytes, ErrBadSignature},
		{"BIP-340 by the same key", func() *ReleaseHeldHTLC {
			r := fixtureReleaseLN()
			if err := r.Sign(ctx, lnReceiverSigner); err != nil {
				t.Fatal(err)
			}
			return r
		}(), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifyRelease(c.r, fixtureExpectLN(), now, 0)
			if c.err == nil && err != nil {
				t.Fatalf("got %v, want success", err)
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
			if err != nil && !isNamed(err) {
				t.Fatalf("unnamed error %v", err)
			}
		})
	}

	// A wrong key's signature says so.
	err := VerifyRelease(cases[1].r, fixtureExpectLN(), now, 0)
	if !errors.Is(err, ErrBadLNSignature) {
		t.Fatalf("forged: %v does not wrap ErrBadLNSignature", err)
	}
}

// TestSignSwitchesScheme checks signing one way clears the other
// signature, so a release always carries exactly one.
func TestSignSwitchesScheme(t *testing.T) {
	ctx := context.Background()
	r := lnSignedRelease(t)
	if err := r.Sign(ctx, lnReceiverSigner); err != nil {
		t.Fatal(err)
	}
	if r.Scheme() != SchemeBIP340 || r.LNSignature != ([65]byte{}) {
		t.Fatalf("after Sign: %v", r.Scheme())
	}
	if err := VerifyRelease(r, fixtureExpectLN(), fixtureNow, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.SignLN(ctx, lnReceiverSigner); err != nil {
		t.Fatal(err)
	}
	if r.Scheme() != SchemeLN || r.Signature != ([64]byte{}) {
		t.Fatalf("after SignLN: %v", r.Scheme())
	}
	if err := VerifyRelease(r, fixtureExpectLN(), fixtureNow, 0); err != nil {
		t.Fatal(err)
	}
}

// highSigner is a MessageSigner that hands back the high-s twin of its
// signatures, as a signer that does not normalize might.
type highSigner struct{ *PrivKeySigner }

func (s highSigner) SignMessage(ctx context.Context, msg []byte) (string, error) {
	sig, err := s.PrivKeySigner.SignMessage(ctx, msg)
	if err != nil {
		return "", err
	}
	raw, _ := ParseLNSignature(sig)
	return EncodeLNSignature(highS(raw)), nil
}

// TestLNReleaseOneEncoding checks a release carries the low-s form of its
// ln_signature only, so its bytes (and its ReleaseDigest) are the only
// encoding of what its receiver signed: the high-s twin of the golden
// release does not decode, while SignLN and ReleaseFromLNMessage take a
// high-s signature and keep its low-s form, the golden bytes. A forgery
// over the same signed bytes has another digest: a refusal of it never
// names the genuine release.
func TestLNReleaseOneEncoding(t *testing.T) {
	golden := readGolden(t, "release_held_htlc_ln")
	raw, _ := ParseLNSignature(readGoldenText(t, goldenLNSig))
	twin := highS(raw)
	_, err := DecodeReleaseHeldHTLC(edit(t, "release_held_htlc_ln", setRecord(242, twin[:])))
	if !errors.Is(err, ErrInvalidSignatureEncoding) {
		t.Fatalf("high-s twin decodes: %v", err)
	}

	r := fixtureReleaseLN()
	if err := r.SignLN(t.Context(), highSigner{lnReceiverSigner}); err != nil {
		t.Fatal(err)
	}
	fromText, err := ReleaseFromLNMessage(
		[]byte(readGoldenText(t, goldenLNMessage)), EncodeLNSignature(twin))
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*ReleaseHeldHTLC{"SignLN": r, "from text": fromText} {
		b, err := m.Encode()
		if err != nil || !bytes.Equal(b, golden) {
			t.Fatalf("%s: %x (%v)\nwant golden %x", name, b, err, golden)
		}
		if d, err := m.Digest(); err != nil || d != ReleaseDigest(golden) {
			t.Fatalf("%s: digest %x (%v)", name, d, err)
		}
	}

	forged := fixtureReleaseLN()
	if err := forged.SignLN(t.Context(), otherSigner); err != nil {
		t.Fatal(err)
	}
	if d, _ := forged.Digest(); d == ReleaseDigest(golden) {
		t.Fatal("a forgery over the same bytes shares the genuine release's digest")
	}
}

// TestDecodeRejectsLNRelease checks the decoder's rules for the signature
// records: exactly one of 240 and 242, and 242 of 65 bytes, for a
// compressed key, in range, low-s.
func TestDecodeRejectsLNRelease(t *testing.T) {
	raw, _ := ParseLNSignature(readGoldenText(t, goldenLNSig))
	bip340 := readGolden(t, "release_held_htlc")
	with := func(f func(*[65]byte)) []byte {
		sig := raw
		f(&sig)
		return edit(t, "release_held_htlc_ln", setRecord(242, sig[:]))
	}
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"both signatures", edit(t, "release_held_htlc", addRecord(242, raw[:])), ErrConflictingRecords},
		{"both, ln_signature first", edit(t, "release_held_htlc_ln", addRecord(240, bip340[len(bip340)-64:])), ErrConflictingRecords},
		{"neither", edit(t, "release_held_htlc_ln", dropRecord(242)), ErrMissingRecord},
		{"64 bytes", edit(t, "release_held_htlc_ln", setRecord(242, raw[:64])), ErrWrongLength},
		{"66 bytes", edit(t, "release_held_htlc_ln", setRecord(242, append(raw[:], 0))), ErrWrongLength},
		{"all zero", with(func(s *[65]byte) { *s = [65]byte{} }), ErrInvalidSignatureEncoding},
		{"uncompressed header", with(func(s *[65]byte) { s[0] -= 4 }), ErrInvalidSignatureEncoding},
		{"header 35", with(func(s *[65]byte) { s[0] = 35 }), ErrInvalidSignatureEncoding},
		{"r zero", with(func(s *[65]byte) { clear(s[1:33]) }), ErrInvalidSignatureEncoding},
		{"s = n", with(func(s *[65]byte) { copy(s[33:], mustHex(t, sOverflow)[32:]) }), ErrInvalidSignatureEncoding},
		{"high s", with(func(s *[65]byte) { *s = highS(*s) }), ErrInvalidSignatureEncoding},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeReleaseHeldHTLC(c.input)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestReleaseFromLNMessageRejects checks every text or signature
// ReleaseFromLNMessage refuses, each with its error.
func TestReleaseFromLNMessageRejects(t *testing.T) {
	msg := readGoldenText(t, goldenLNMessage)
	sig := readGoldenText(t, goldenLNSig)
	text := strings.TrimPrefix(msg, ReleaseMessagePrefix)
	golden := readGolden(t, "release_held_htlc_ln")
	withRecords := func(b []byte) string { return ReleaseMessagePrefix + hex.EncodeToString(b) }
	signed := golden[:len(golden)-67]
	cases := []struct {
		name, msg, sig string
		want           error
	}{
		{"empty", "", sig, ErrInvalidValue},
		{"no prefix", text, sig, ErrInvalidValue},
		{"the registration prefix", RegisterMessagePrefix + text, sig, ErrInvalidValue},
		{"prefix in other case", strings.ToUpper(ReleaseMessagePrefix) + text, sig, ErrInvalidValue},
		{"prefix without its space", strings.TrimSuffix(ReleaseMessagePrefix, " ") + text, sig, ErrInvalidValue},
		{"uppercase hex", ReleaseMessagePrefix + strings.ToUpper(text), sig, ErrInvalidValue},
		{"odd hex", msg[:len(msg)-1], sig, ErrInvalidValue},
		{"not hex", msg[:len(msg)-2] + "zz", sig, ErrInvalidValue},
		{"trailing newline", msg + "\n", sig, ErrInvalidValue},
		{"prefix only", ReleaseMessagePrefix, sig, ErrMissingRecord},
		{"with the signature record", withRecords(golden), sig, ErrUnknownEvenType},
		{"truncated stream", withRecords(signed[:len(signed)-1]), sig, ErrTruncated},
		{"a record missing", withRecords(signed[:len(signed)-10]), sig, ErrMissingRecord},
		{"oversize", ReleaseMessagePrefix + strings.Repeat("00", MaxReleaseSize+1), sig, ErrOversize},
		{"extra records too big to sign", withRecords(append(bytes.Clone(signed),
			joinRecords([]rawRecord{{1001, make([]byte, MaxReleaseSize-len(signed)-4)}})...)), sig, ErrOversize},
		{"no signature", msg, "", ErrBadLNSignature},
		{"signature uppercase", msg, strings.ToUpper(sig), ErrBadLNSignature},
		{"signature short", msg, sig[1:], ErrBadLNSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReleaseFromLNMessage([]byte(c.msg), c.sig)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
