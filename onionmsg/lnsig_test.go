package onionmsg

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"pgregory.net/rapid"
)

// lnVector is a public ln_signature test vector: a message, its signature
// and the key that made it.
type lnVector struct {
	name string
	msg  string
	sig  string
	key  string
}

// lnVectors are the public vectors of STANDARDS.md: LDK's own
// (lightning/src/util/message_signing.rs, secret key 1) and the corpus that
// file takes from CLN's tests/test_misc.py.
var lnVectors = []lnVector{
	{"LDK, secret key 1", "test message",
		"d9tibmnic9t5y41hg7hkakdcra94akas9ku3rmmj4ag9mritc8ok4p5qzefs78c9pqfhpuftqqzhydbdwfg7u6w6wdxcqpqn4sj4e73e",
		"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"},
	{"CLN, is this compatible?", "is this compatible?",
		"rbgfioj114mh48d8egqx8o9qxqw4fmhe8jbeeabdioxnjk8z3t1ma1hu1fiswpakgucwwzwo6ofycffbsqusqdimugbh41n1g698hr9t",
		"02b80cabdf82638aac86948e4c06e82064f547768dcef977677b9ea931ea75bab5"},
	{"CLN, hi (1)", "hi",
		"rnrphcjswusbacjnmmmrynh9pqip7sy5cx695h6mfu64iac6qmcmsd8xnsyczwmpqp9shqkth3h4jmkgyqu5z47jfn1q7gpxtaqpx4xg",
		"02de60d194e1ca5947b59fe8e2efd6aadeabfb67f2e89e13ae1a799c1e08e4a43b"},
	{"CLN, hi (2)", "hi",
		"ry8bbsopmduhxy3dr5d9ekfeabdpimfx95kagdem7914wtca79jwamtbw4rxh69hg7n6x9ty8cqk33knbxaqftgxsfsaeprxkn1k48p3",
		"022b8ece90ee891cbcdac0c1cc6af46b73c47212d8defbce80265ac81a6b794931"},
}

// secretKeyOne is the signer of LDK's vector: the private key 1.
func secretKeyOne() *PrivKeySigner {
	var b [32]byte
	b[31] = 1
	key, _ := btcec.PrivKeyFromBytes(b[:])
	return NewPrivKeySigner(key)
}

// TestLNSignatureVectors recovers the key of every public vector and
// checks it verifies under that key and no other.
func TestLNSignatureVectors(t *testing.T) {
	for _, v := range lnVectors {
		t.Run(v.name, func(t *testing.T) {
			want, err := ParseNodeKey(v.key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RecoverLNSignature([]byte(v.msg), v.sig)
			if err != nil || got != want {
				t.Fatalf("recovered %v (%v), want %v", got, err, want)
			}
			if err := VerifyLNSignature([]byte(v.msg), v.sig, want); err != nil {
				t.Fatalf("verify: %v", err)
			}
			err = VerifyLNSignature([]byte(v.msg), v.sig, otherKey)
			if !errors.Is(err, ErrBadLNSignature) {
				t.Fatalf("verifies under another key: %v", err)
			}
			err = VerifyLNSignature([]byte(v.msg+"!"), v.sig, want)
			if !errors.Is(err, ErrBadLNSignature) {
				t.Fatalf("verifies over another message: %v", err)
			}
			raw, err := ParseLNSignature(v.sig)
			if err != nil || EncodeLNSignature(raw) != v.sig {
				t.Fatalf("parse and encode: %q (%v)", EncodeLNSignature(raw), err)
			}
		})
	}
}

// TestLNSignatureSignsLikeLDK checks PrivKeySigner.SignMessage makes LDK's
// vector byte for byte: RFC 6979 nonces, as libsecp256k1's.
func TestLNSignatureSignsLikeLDK(t *testing.T) {
	v := lnVectors[0]
	s := secretKeyOne()
	if s.NodeKey().String() != v.key {
		t.Fatalf("secret key 1 is %v", s.NodeKey())
	}
	got, err := s.SignMessage(t.Context(), []byte(v.msg))
	if err != nil || got != v.sig {
		t.Fatalf("signed %q (%v)\nwant   %q", got, err, v.sig)
	}
}

// TestLNMessageDigest pins the digest: SHA-256 twice over the prefix and
// the message.
func TestLNMessageDigest(t *testing.T) {
	once := sha256.Sum256([]byte("Lightning Signed Message:test message"))
	if got := LNMessageDigest([]byte("test message")); got != sha256.Sum256(once[:]) {
		t.Fatalf("digest %x", got)
	}
}

// TestLNSignatureRoundTrip signs random messages with random keys and
// recovers the key from each signature.
func TestLNSignatureRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSigner(t, "signer")
		msg := rapid.SliceOf(rapid.Byte()).Draw(t, "msg")
		sig, err := s.SignMessage(context.Background(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != LNSignatureLen {
			t.Fatalf("%d characters", len(sig))
		}
		raw, err := ParseLNSignature(sig)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkLNSignature(&raw, true); err != nil {
			t.Fatalf("signer made a high-s signature: %v", err)
		}
		if err := VerifyLNSignature(msg, sig, s.NodeKey()); err != nil {
			t.Fatal(err)
		}
	})
}

// highS returns raw's high-s twin: s replaced by n-s and the parity bit of
// the recovery code flipped. It recovers the same key.
func highS(raw [65]byte) [65]byte {
	var s btcec.ModNScalar
	s.SetByteSlice(raw[33:])
	s.Negate()
	s.PutBytesUnchecked(raw[33:])
	raw[0] = 31 + ((raw[0] - 31) ^ 1)
	return raw
}

// TestLNSignatureMalleation checks ECDSA's one malleation: the high-s twin
// of a signature recovers the same key (so nothing may key single use on
// signature bytes), and lowSLNSignature maps it back.
func TestLNSignatureMalleation(t *testing.T) {
	for _, v := range lnVectors {
		raw, err := ParseLNSignature(v.sig)
		if err != nil {
			t.Fatal(err)
		}
		twin := highS(raw)
		if err := checkLNSignature(&twin, true); !errors.Is(err, ErrInvalidSignatureEncoding) {
			t.Fatalf("%s: the twin passes as low s: %v", v.name, err)
		}
		got, err := RecoverLNSignature([]byte(v.msg), EncodeLNSignature(twin))
		if err != nil || got.String() != v.key {
			t.Fatalf("%s: the twin recovers %v (%v)", v.name, got, err)
		}
		if lowSLNSignature(twin) != raw || lowSLNSignature(raw) != raw {
			t.Fatalf("%s: low-s form is not the original", v.name)
		}
	}
}

// TestLNSignatureRejects checks every malformed signature fails with
// ErrBadLNSignature, and that a changed character never verifies.
func TestLNSignatureRejects(t *testing.T) {
	v := lnVectors[0]
	key, _ := ParseNodeKey(v.key)
	raw, _ := ParseLNSignature(v.sig)
	uncompressed := raw
	uncompressed[0] -= 4
	zeroR := raw
	clear(zeroR[1:33])
	cases := map[string]string{
		"empty":               "",
		"short":               v.sig[:LNSignatureLen-1],
		"one character more":  v.sig + "y",
		"eight more":          v.sig + "yyyyyyyy",
		"uppercase":           strings.ToUpper(v.sig),
		"one uppercase":       "D" + v.sig[1:],
		"not the alphabet":    "l" + v.sig[1:],
		"hex":                 strings.Repeat("0f", 52),
		"space":               " " + v.sig[1:],
		"uncompressed header": EncodeLNSignature(uncompressed),
		"r is zero":           EncodeLNSignature(zeroR),
	}
	for name, sig := range cases {
		_, err := RecoverLNSignature([]byte(v.msg), sig)
		if !errors.Is(err, ErrBadLNSignature) {
			t.Errorf("%s: got %v, want ErrBadLNSignature", name, err)
		}
	}
	const alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"
	for i := range v.sig {
		c := alphabet[(strings.IndexByte(alphabet, v.sig[i])+1)%32]
		mangled := v.sig[:i] + string(c) + v.sig[i+1:]
		err := VerifyLNSignature([]byte(v.msg), mangled, key)
		if !errors.Is(err, ErrBadLNSignature) {
			t.Fatalf("character %d changed: %v", i, err)
		}
	}
}

// TestSignMessageHonoursContext checks a canceled context stops signing.
func TestSignMessageHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := receiverSigner.SignMessage(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
