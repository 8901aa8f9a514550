package lnd_test

import (
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
)

// testSignMessage: what lnd's lnrpc SignMessage makes with dave's node key
// is an ln_signature onionmsg recovers to his key, in the one (low-s)
// form a release carries; a release signed through it verifies as the
// sender LSP verifies it, and so does a registration text. A wallet on
// lnd can thus sign either scheme, and what it signs as an ln_signature is
// what CLN and LDK would sign.
func testSignMessage(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	dave, alice := nodeKey(net.Dave.PubKey), nodeKey(net.Alice.PubKey)
	msg := []byte("asynclsp: lnd's ln_signature")

	sig, err := net.Dave.Client.SignMessage(ctx, msg)
	must(t, err)
	if got, err := onionmsg.RecoverLNSignature(msg, sig); err != nil || got != dave {
		t.Fatalf("dave's signature recovers %v (%v), want %v", got, err, dave)
	}
	if err := onionmsg.VerifyLNSignature(msg, sig, alice); !errors.Is(err, onionmsg.ErrBadLNSignature) {
		t.Fatalf("dave's signature, alice's key: %v", err)
	}
	if err := onionmsg.VerifyLNSignature([]byte("another message"), sig, dave); err == nil {
		t.Fatal("dave's signature verifies over another message")
	}

	// A release dave signs through lnd: SignLN keeps lnd's signature as
	// it is (lnd writes low s), and the release verifies.
	held := &onionmsg.HeldHTLCAvailable{
		HoldID: onionmsg.NewHoldID(), PaymentHash: lntypes.Hash{1, 2, 3},
		SenderLSPKey: nodeKey(net.Bob.PubKey), ReceiverKey: dave,
		ReleaseSecret: onionmsg.NewReleaseSecret(),
	}
	now := time.Now()
	rel := onionmsg.NewRelease(held, now, 10*time.Minute)
	must(t, rel.SignLN(ctx, net.Dave.Client))
	text, err := rel.LNMessage()
	must(t, err)
	lndSig, err := net.Dave.Client.SignMessage(ctx, text)
	must(t, err)
	if got := onionmsg.EncodeLNSignature(rel.LNSignature); got != lndSig {
		t.Fatalf("the release carries %s, lnd signed %s", got, lndSig)
	}
	expect := onionmsg.ReleaseExpect{
		HoldID: held.HoldID, PaymentHash: held.PaymentHash,
		ReleaseSecret: held.ReleaseSecret, SenderLSPKey: held.SenderLSPKey,
		ReceiverKey: dave,
	}
	raw, err := rel.Encode()
	must(t, err)
	decoded, err := onionmsg.DecodeReleaseHeldHTLC(raw)
	must(t, err)
	if err := onionmsg.VerifyRelease(decoded, expect, now, 0); err != nil {
		t.Fatalf("dave's release does not verify: %v", err)
	}
	fromText, err := onionmsg.ReleaseFromLNMessage(text, lndSig)
	must(t, err)
	if err := onionmsg.VerifyRelease(fromText, expect, now, 0); err != nil {
		t.Fatalf("the release rebuilt from its text does not verify: %v", err)
	}
	expect.ReceiverKey = alice
	if err := onionmsg.VerifyRelease(decoded, expect, now, 0); err == nil {
		t.Fatal("dave's release verifies as alice's")
	}

	// A registration: the text of a challenge.
	reg := onionmsg.RegisterLNMessage([]byte("a receiver LSP's challenge"))
	regSig, err := net.Dave.Client.SignMessage(ctx, reg)
	must(t, err)
	if err := onionmsg.VerifyLNSignature(reg, regSig, dave); err != nil {
		t.Fatalf("dave's registration: %v", err)
	}
}
