package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
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
