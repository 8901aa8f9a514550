package client

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
)

func TestChallengeBytes(t *testing.T) {
	_, lsp := testkit.Key(1)
	_, me := testkit.Key(2)
	c := &Challenge{LSPKey: lsp, ReceiverKey: me, Nonce: [32]byte{7},
		ExpiresAt: time.Unix(1_800_000_000, 0).UTC(), MAC: [32]byte{9}}
	b := c.Bytes()
	if len(b) != ChallengeLen || !bytes.Equal(b[:33], lsp[:]) || !bytes.Equal(b[33:66], me[:]) ||
		b[66] != 7 || b[106] != 9 || !bytes.Equal(b[:106], c.Unauthenticated()) {
		t.Fatalf("bytes %x", b)
	}
	got, err := ParseChallenge(b)
	if err != nil || *got != *c {
		t.Fatalf("parsed %+v, %v", got, err)
	}
	now := time.Unix(1_799_999_000, 0)
	if err := got.Check(lsp, me, now); err != nil {
		t.Fatal(err)
	}
	_, other := testkit.Key(3)
	for name, err := range map[string]error{
		"another LSP":      got.Check(other, me, now),
		"another receiver": got.Check(lsp, other, now),
		"expired":          got.Check(lsp, me, c.ExpiresAt),
	} {
		if !errors.Is(err, ErrBadChallenge) {
			t.Errorf("%s: %v", name, err)
		}
	}
	short := b[:ChallengeLen-1]
	notAKey := bytes.Clone(b)
	notAKey[0] = 0x05
	for name, bad := range map[string][]byte{"short": short, "not a key": notAKey} {
		if _, err := ParseChallenge(bad); !errors.Is(err, ErrBadChallenge) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestChallengeLNMessage pins the text an ln_signature registration signs:
// the register prefix and the challenge's 138 bytes in lowercase hex, and
// checks a signature over it recovers the receiver's key.
func TestChallengeLNMessage(t *testing.T) {
	_, lsp := testkit.Key(1)
	priv, me := testkit.Key(2)
	c := &Challenge{LSPKey: lsp, ReceiverKey: me, Nonce: [32]byte{0xab},
		ExpiresAt: time.Unix(1_800_000_000, 0).UTC(), MAC: [32]byte{0xcd}}
	msg := c.LNMessage()
	want := "asynclsp register: DO NOT SIGN THIS MESSAGE MANUALLY: " +
		hex.EncodeToString(c.Bytes())
	if string(msg) != want || len(msg) != len(onionmsg.RegisterMessagePrefix)+2*ChallengeLen {
		t.Fatalf("LNMessage %q\nwant %q", msg, want)
	}
	sig, err := onionmsg.NewPrivKeySigner(priv).SignMessage(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if key, err := onionmsg.RecoverLNSignature(msg, sig); err != nil || key != me {
		t.Fatalf("recovered %v (%v), want %v", key, err, me)
	}
}

// TestNewNeedsASigner checks a client needs one of the two signers, and
// takes either alone.
func TestNewNeedsASigner(t *testing.T) {
	priv, me := testkit.Key(2)
	s := onionmsg.NewPrivKeySigner(priv)
	for name, cfg := range map[string]Config{
		"BIP-340":      {Signer: s},
		"ln_signature": {MessageSigner: s},
		"both":         {Signer: s, MessageSigner: s},
	} {
		cfg.BaseURL, cfg.NodeKey = "https://lsp.example/", me
		if _, err := New(cfg); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := New(Config{BaseURL: "https://lsp.example/", NodeKey: me}); err == nil {
		t.Error("a client without a signer")
	}
}
