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

// lnSignatureLen is the length of lnd's SignMessage signature: 65 bytes in
// zbase32.
const lnSignatureLen = 104

// SignMessage signs msg with the node key through lnd's lnrpc SignMessage:
// the ln_signature of bLIP-50, zbase32 of a recoverable ECDSA signature
// over sha256(sha256("Lightning Signed Message:" || msg)), the same that
// CLN's signmessage and LDK's message_signing::sign make. It is
// onionmsg.MessageSigner (releases and registrations signed as
// ln_signatures) and the receiver role's LSPS5 webhooks. It needs the
// message:write permission (admin.macaroon has it). lnd's VerifyMessage checks such a signature only against
// nodes in its graph; recover the key instead (onionmsg.RecoverLNSignature).
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
	if len(resp.Signature) != lnSignatureLen {
		return "", fmt.Errorf("lnd SignMessage: signature of %d "+
			"characters, want %d", len(resp.Signature), lnSignatureLen)
	}

	return resp.Signature, nil
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
