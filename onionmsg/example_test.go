package onionmsg_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
)

// A receiver answers a held_htlc_available with a signed release; the sender
// LSP decodes and verifies it.
func Example() {
	ctx := context.Background()
	receiverPriv, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{0x22}, 32))
	receiver := onionmsg.NewPrivKeySigner(receiverPriv)
	senderLSPPriv, _ := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{0x11}, 32))
	senderLSPKey := onionmsg.NodeKeyFromPubKey(senderLSPPriv.PubKey())
	now := time.Unix(1_750_000_000, 0)

	// What the sender LSP sent, and keeps.
	held := &onionmsg.HeldHTLCAvailable{
		HoldID:         onionmsg.NewHoldID(),
		PaymentHash:    [32]byte{0xab},
		Amount:         1_000_000,
		DeadlineHeight: 900_000,
		DeadlineTime:   now.Add(72 * time.Hour),
		SenderLSPKey:   senderLSPKey,
		ReceiverKey:    receiver.NodeKey(),
		ReleaseSecret:  onionmsg.NewReleaseSecret(),
	}

	// The receiver, back online, signs a release valid for ten minutes.
	release := onionmsg.NewRelease(held, now, 10*time.Minute)
	if err := release.Sign(ctx, receiver); err != nil {
		panic(err)
	}
	wire, _ := release.Encode()

	// The sender LSP checks it against the hold.
	got, err := onionmsg.DecodeReleaseHeldHTLC(wire)
	if err != nil {
		panic(err)
	}
	want := onionmsg.ReleaseExpect{
		HoldID:        held.HoldID,
		PaymentHash:   held.PaymentHash,
		ReleaseSecret: held.ReleaseSecret,
		SenderLSPKey:  senderLSPKey,
		ReceiverKey:   held.ReceiverKey,
	}
	fmt.Println(onionmsg.VerifyRelease(got, want, now.Add(time.Minute), 30*time.Second))
	err = onionmsg.VerifyRelease(got, want, now.Add(time.Hour), 30*time.Second)
	fmt.Println(errors.Is(err, onionmsg.ErrExpired))
	// Output:
	// <nil>
	// true
}
