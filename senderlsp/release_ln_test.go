package senderlsp

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
)

// releaseLNFor is dave's release of a hold carol was told of, signed as an
// ln_signature (a wallet that can only signmessage).
func (h *harness) releaseLNFor(held *onionmsg.HeldHTLCAvailable, signer *btcec.PrivateKey) *onionmsg.ReleaseHeldHTLC {
	h.t.Helper()
	rel := onionmsg.NewRelease(held, h.clock.Now(), 10*time.Minute)
	if err := rel.SignLN(context.Background(), onionmsg.NewPrivKeySigner(signer)); err != nil {
		h.t.Fatal(err)
	}
	return rel
}

// rawRelease is a release's payload as bytes, sent as they are: for
// releases no encoder would write.
type rawRelease []byte

func (rawRelease) MsgType() onionmsg.MsgType { return onionmsg.TypeReleaseHeldHTLC }

func (r rawRelease) Encode() ([]byte, error) { return r, nil }

// highSTwin returns an ln_signature release's bytes with its signature's
// twin: s replaced by n-s and the recovery code's parity flipped. The twin
// recovers the same key over the same text; only the low-s form is a
// release.
func highSTwin(t *testing.T, rel *onionmsg.ReleaseHeldHTLC) rawRelease {
	t.Helper()
	b, err := rel.Encode()
	if err != nil {
		t.Fatal(err)
	}
	sig := b[len(b)-65:] // record 242 is the last
	var s btcec.ModNScalar
	s.SetByteSlice(sig[33:])
	s.Negate()
	s.PutBytesUnchecked(sig[33:])
	sig[0] = 31 + ((sig[0] - 31) ^ 1)
	return b
}

// A release dave signs as an ln_signature settles the hold like a BIP-340
// one, and the released outcome names it by its digest.
func TestLNReleaseSettles(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	rel := h.releaseLNFor(msg, h.davePriv)
	if rel.Scheme() != onionmsg.SchemeLN {
		t.Fatalf("signed a %v release", rel.Scheme())
	}
	h.relay(rel)
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || done.Preimage == nil || len(h.lnd.Sent()) != 1 {
		t.Fatalf("after the release: %s, %d payments", done.State, len(h.lnd.Sent()))
	}
	if got := h.invoiceState(hold.PaymentHash); got != "SETTLED" {
		t.Fatalf("hold invoice %s, want SETTLED", got)
	}
	if o := h.waitOutcome(hold.ID, onionmsg.StatusReleased, 1)[0]; o.ReleaseDigest != digest(t, rel) {
		t.Fatalf("released outcome names %x, want %x", o.ReleaseDigest, digest(t, rel))
	}
}

// Forged, wrong-key and malleated ln_signature releases change nothing
// (invariant 7): the forgery and the wrong key are refused as bad
// signatures, the high-s twin of dave's own release does not even decode;
// the hold stays HELD, carol hears one bad_signature refusal naming the
// release refused, and dave's genuine release still settles. Its twin,
// relayed after, pays nothing more.
func TestBadLNReleasesChangeNothing(t *testing.T) {
	h := newHarness(t)
	hold, msg := h.heldPayment()
	mallory, malloryKey := testkit.Key(9)

	forged := h.releaseLNFor(msg, mallory)
	wrongKey := *msg
	wrongKey.ReceiverKey = malloryKey
	byMallory := h.releaseLNFor(&wrongKey, mallory)
	genuine := h.releaseLNFor(msg, h.davePriv)
	twin := highSTwin(t, genuine)
	if b, _ := genuine.Encode(); bytes.Equal(b, twin) {
		t.Fatal("the twin is the release")
	}

	h.relay(forged)
	h.relay(byMallory)
	if err := h.carolNode.Send(context.Background(), h.bob, twin); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "three releases dropped", func() bool {
		kind := bus.KindReleaseHeldHTLC
		return h.bobConn.Dropped(kind, bus.ReasonBadSignature) == 2 &&
			h.bobConn.Dropped(kind, bus.ReasonMalformed) == 1
	})
	if got := h.get(hold.ID); got.State != holdstore.StateHeld || len(h.lnd.Sent()) != 0 {
		t.Fatalf("bad releases moved the hold to %s and paid %d times",
			got.State, len(h.lnd.Sent()))
	}
	rejected := h.waitOutcome(hold.ID, onionmsg.StatusRejected, 1)
	if o := rejected[0]; len(rejected) != 1 || o.Reason != "bad_signature" ||
		(o.ReleaseDigest != digest(t, forged) && o.ReleaseDigest != digest(t, byMallory)) {
		t.Fatalf("refusals told: %+v", rejected)
	}

	h.relay(genuine)
	done := h.waitResolved(hold.ID)
	if done.State != holdstore.StateSettled || len(h.lnd.Sent()) != 1 {
		t.Fatalf("state %s after %d payments", done.State, len(h.lnd.Sent()))
	}
	if err := h.carolNode.Send(context.Background(), h.bob, twin); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the twin dropped", func() bool {
		return h.bobConn.Dropped(bus.KindReleaseHeldHTLC, bus.ReasonMalformed) == 2
	})
	if n := len(h.lnd.Sent()); n != 1 {
		t.Fatalf("%d payments after the twin", n)
	}
}
