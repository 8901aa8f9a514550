package onionmsg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// bip340Vector is one row of the official BIP-340 test vectors.
type bip340Vector struct {
	index     string
	secretKey []byte // empty for verification-only vectors
	publicKey [32]byte
	auxRand   []byte
	message   [32]byte
	signature [64]byte
	valid     bool
	comment   string
}

func loadBIP340Vectors(t *testing.T) []bip340Vector {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "bip340", "test-vectors.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var vectors []bip340Vector
	for _, row := range rows[1:] {
		msg := mustHex(t, row[4])
		if len(msg) != 32 {
			t.Fatalf("vector %s: %d-byte message; this file should "+
				"hold 32-byte messages only", row[0], len(msg))
		}
		v := bip340Vector{
			index:     row[0],
			secretKey: mustHex(t, row[1]),
			auxRand:   mustHex(t, row[3]),
			valid:     row[6] == "TRUE",
			comment:   row[7],
		}
		copy(v.publicKey[:], mustHex(t, row[2]))
		copy(v.message[:], msg)
		copy(v.signature[:], mustHex(t, row[5]))
		vectors = append(vectors, v)
	}
	if len(vectors) != 15 {
		t.Fatalf("%d vectors, want 15", len(vectors))
	}
	return vectors
}

// TestBIP340Vectors runs every official vector through VerifySchnorr, the
// low-level check under VerifyTagged, and asserts the specific error of each
// invalid one.
func TestBIP340Vectors(t *testing.T) {
	// Which error each invalid vector must fail with.
	wantErr := map[string]error{
		"5":  ErrInvalidKey,               // public key not on the curve
		"14": ErrInvalidKey,               // public key >= field size
		"12": ErrInvalidSignatureEncoding, // r = p
		"13": ErrInvalidSignatureEncoding, // s = n
	}
	for _, v := range loadBIP340Vectors(t) {
		err := VerifySchnorr(v.message, v.signature, v.publicKey)
		switch {
		case v.valid && err != nil:
			t.Errorf("vector %s: valid, got %v", v.index, err)
		case !v.valid && err == nil:
			t.Errorf("vector %s (%s): invalid, but verified", v.index,
				v.comment)
		case !v.valid:
			want, ok := wantErr[v.index]
			if !ok {
				want = ErrBadSignature
			}
			if !errors.Is(err, want) {
				t.Errorf("vector %s (%s): got %v, want %v", v.index,
					v.comment, err, want)
			}
		}
	}
}

// TestBIP340SigningVectors checks that btcec's signer, which PrivKeySigner
// uses, produces the official signatures given the vectors' aux randomness.
func TestBIP340SigningVectors(t *testing.T) {
	signed := 0
	for _, v := range loadBIP340Vectors(t) {
		if len(v.secretKey) == 0 {
			continue
		}
		priv, pub := btcec.PrivKeyFromBytes(v.secretKey)
		if !bytes.Equal(schnorr.SerializePubKey(pub), v.publicKey[:]) {
			t.Errorf("vector %s: public key mismatch", v.index)
		}
		sig, err := schnorr.Sign(priv, v.message[:],
			schnorr.CustomNonce([32]byte(v.auxRand)))
		if err != nil {
			t.Fatalf("vector %s: %v", v.index, err)
		}
		if !bytes.Equal(sig.Serialize(), v.signature[:]) {
			t.Errorf("vector %s: signature\n%x\nwant\n%x", v.index,
				sig.Serialize(), v.signature)
		}
		signed++
	}
	if signed != 4 {
		t.Fatalf("%d signing vectors, want 4", signed)
	}
}

// TestTaggedDigest checks the tagged hash against its definition, computed
// here with crypto/sha256 alone, as a wallet would.
func TestTaggedDigest(t *testing.T) {
	tag, msg := []byte(TagRelease), []byte("some signed bytes")
	tagHash := sha256.Sum256(tag)
	h := sha256.New()
	h.Write(tagHash[:])
	h.Write(tagHash[:])
	h.Write(msg)
	if got := TaggedDigest(tag, msg); !bytes.Equal(got[:], h.Sum(nil)) {
		t.Fatalf("TaggedDigest = %x, want %x", got, h.Sum(nil))
	}
}

// TestTaggedSignatures runs the tagged path with the vectors' keys and the
// fixture keys (both parities of y): PrivKeySigner signs what lnd's
// SignMessage would (BIP-340 over chainhash.TaggedHash), VerifyTagged and
// VerifySchnorr accept it, and any change of tag, message, key or signature
// is refused.
func TestTaggedSignatures(t *testing.T) {
	ctx := context.Background()
	var signers []*PrivKeySigner
	for _, v := range loadBIP340Vectors(t) {
		if len(v.secretKey) > 0 {
			priv, _ := btcec.PrivKeyFromBytes(v.secretKey)
			signers = append(signers, NewPrivKeySigner(priv))
		}
	}
	signers = append(signers, senderLSPSigner, receiverSigner)
	parities := map[byte]bool{}

	msg := []byte("release bytes")
	for i, s := range signers {
		key := s.NodeKey()
		parities[key[0]] = true
		sig, err := s.SignTagged(ctx, []byte(TagRelease), msg)
		if err != nil {
			t.Fatal(err)
		}

		// The same signature as schnorr.Sign over the tagged hash.
		want, err := schnorr.Sign(s.key, chainhash.TaggedHash(
			[]byte(TagRelease), msg)[:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig[:], want.Serialize()) {
			t.Errorf("signer %d: not BIP-340 over the tagged hash", i)
		}

		if err := VerifyTagged([]byte(TagRelease), msg, sig, key); err != nil {
			t.Errorf("signer %d: %v", i, err)
		}
		digest := TaggedDigest([]byte(TagRelease), msg)
		if err := VerifySchnorr(digest, sig, [32]byte(key[1:])); err != nil {
			t.Errorf("signer %d: low level: %v", i, err)
		}

		other := signers[(i+1)%len(signers)].NodeKey()
		flipped := sig
		flipped[10] ^= 1
		refused := map[string]error{
			"other tag": VerifyTagged([]byte(TagEnvelope), msg, sig, key),
			"other msg": VerifyTagged([]byte(TagRelease), []byte("release bytez"), sig, key),
			"other key": VerifyTagged([]byte(TagRelease), msg, sig, other),
			"bad sig":   VerifyTagged([]byte(TagRelease), msg, flipped, key),
		}
		for what, err := range refused {
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("signer %d, %s: got %v, want ErrBadSignature",
					i, what, err)
			}
		}
	}
	if !parities[0x02] || !parities[0x03] {
		t.Fatalf("keys cover parities %v, want both 02 and 03", parities)
	}
}

// TestVerifyTaggedRejectsBadKey checks keys that are not compressed points.
func TestVerifyTaggedRejectsBadKey(t *testing.T) {
	var sig [64]byte
	bad := map[string]NodeKey{
		"zero":         {},
		"uncompressed": NodeKey(append([]byte{0x04}, receiverKey[1:]...)),
		// x of BIP-340 vector 5, not on the curve.
		"not on curve": NodeKey(mustHex(t, "02EEFDEA4CDB677750A420FEE807EACF21EB9898AE79B9768766E4FAA04A2D4A34")),
	}
	for name, key := range bad {
		err := VerifyTagged([]byte(TagRelease), []byte("m"), sig, key)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: got %v, want ErrInvalidKey", name, err)
		}
		if _, err := NewNodeKey(key[:]); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("NewNodeKey %s: got %v, want ErrInvalidKey", name, err)
		}
	}
}

// TestCheckTag checks that we refuse the tags lnd refuses, in CheckTag and
// in PrivKeySigner alike.
func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"", "BIP0340/challenge", "BIP0340", "TapSighash"} {
		if err := CheckTag([]byte(tag)); !errors.Is(err, ErrInvalidTag) {
			t.Errorf("CheckTag(%q) = %v, want ErrInvalidTag", tag, err)
		}
		_, err := receiverSigner.SignTagged(context.Background(), []byte(tag), nil)
		if !errors.Is(err, ErrInvalidTag) {
			t.Errorf("SignTagged(%q) = %v, want ErrInvalidTag", tag, err)
		}
	}
	for _, tag := range []string{TagRelease, TagEnvelope, TagRegister} {
		if err := CheckTag([]byte(tag)); err != nil {
			t.Errorf("CheckTag(%q) = %v", tag, err)
		}
	}
}

// TestSignerHonoursContext checks a canceled context stops signing.
func TestSignerHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := receiverSigner.SignTagged(ctx, []byte(TagRelease), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
