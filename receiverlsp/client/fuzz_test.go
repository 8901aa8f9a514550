package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// FuzzParseChallenge: a challenge comes from the LSP over the network and
// is signed by the receiver's node key, so its parser must never panic, must
// refuse with ErrBadChallenge, and must accept only bytes it re-encodes
// unchanged.
func FuzzParseChallenge(f *testing.F) {
	lsp, _ := onionmsg.ParseNodeKey("02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	recv, _ := onionmsg.ParseNodeKey("03" + "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
	good := Challenge{LSPKey: lsp, ReceiverKey: recv, Nonce: [32]byte{7},
		ExpiresAt: time.Unix(2_000_000_000, 0).UTC(), MAC: [32]byte{9}}
	f.Add(good.Bytes())
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, ChallengeLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseChallenge(b)
		if err != nil {
			if !errors.Is(err, ErrBadChallenge) {
				t.Fatalf("refused with an unnamed error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatalf("accepted bytes it does not re-encode: %x -> %x", b, c.Bytes())
		}
	})
}
