package lnd

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/keychain"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/signrpc"
)

// bip340Prefix starts the tags lnd refuses: BIP-340 reserves them.
var bip340Prefix = []byte("BIP0340")

// SignTagged signs msg with the node key (key family 6, index 0) through
// lnd's signrpc SignMessage with schnorr_sig and tag: a BIP-340 Schnorr
// signature over chainhash.TaggedHash(tag, msg). Verify it with
// btcec/v2/schnorr against the x-only node key. The tag must not be empty,
// start with "BIP0340" or be "TapSighash" (lnd refuses those).
func (c *Client) SignTagged(ctx context.Context, tag,
	msg []byte) ([64]byte, error) {

	var sig [64]byte
	if err := checkTag(tag); err != nil {
		return sig, fmt.Errorf("lnd SignTagged: %w", err)
	}

	var resp *signrpc.SignMessageResp
	err := c.do(ctx, "SignTagged", func(ctx context.Context) error {
		ctx, cl := c.signer(ctx)
		var err error
		resp, err = cl.SignMessage(ctx, &signrpc.SignMessageReq{
			Msg: msg,
			KeyLoc: &signrpc.KeyLocator{
				KeyFamily: int32(keychain.KeyFamilyNodeKey),
				KeyIndex:  0,
			},
			SchnorrSig: true,
			Tag:        tag,
		})

		return err
	})
	if err != nil {
		return sig, err
	}
	if len(resp.Signature) != len(sig) {
		return sig, fmt.Errorf("lnd SignTagged: signature of %d bytes, "+
			"want %d", len(resp.Signature), len(sig))
	}
	copy(sig[:], resp.Signature)

	return sig, nil
}

// checkTag refuses the tags lnd would refuse, before a round trip.
func checkTag(tag []byte) error {
	switch {
	case len(tag) == 0:
		return fmt.Errorf("%w: empty tag", ErrInvalidRequest)

	case bytes.HasPrefix(tag, bip340Prefix):
		return fmt.Errorf("%w: tag %q starts with BIP0340",
			ErrInvalidRequest, tag)

	case bytes.HasPrefix(tag, chainhash.TagTapSighash):
		return fmt.Errorf("%w: tag %q is reserved", ErrInvalidRequest,
			tag)
	}

	return nil
}

// SignMessage signs msg with the node key through lnd's lnrpc SignMessage:
// the zbase32 ln_signature of bLIP-50 (a recoverable ECDSA signature over
// SHA256(SHA256("Lightning Signed Message:" || msg))). It implements
// onionmsg.MessageSigner; the receiver role signs its LSPS5 webhooks with it.
// It needs the message:write permission (admin.macaroon has it).
func (c *Client) SignMessage(ctx context.Context, msg []byte) (string, error) {
	var resp *lnrpc.SignMessageResponse
	err := c.do(ctx, "SignMessage", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.SignMessage(ctx, &lnrpc.SignMessageRequest{Msg: msg})

		return err
	})
	if err != nil {
		return "", err
	}
	if resp.Signature == "" {
		return "", fmt.Errorf("lnd SignMessage: empty signature")
	}

	return resp.Signature, nil
}
