package lnd_test

import (
	"errors"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// verifyTagged checks a BIP-340 signature over chainhash.TaggedHash(tag,
// msg) against the x-only form of key. It has onionmsg.VerifyTagged's
// shape: to test against onionmsg's verifier instead, replace this file's
// body with
//
//	var verifyTagged = onionmsg.VerifyTagged
var verifyTagged = func(tag, msg []byte, sig [64]byte, key nodeKey) error {
	pub, err := btcec.ParsePubKey(key[:])
	if err != nil {
		return err
	}
	xOnly, err := schnorr.ParsePubKey(schnorr.SerializePubKey(pub))
	if err != nil {
		return err
	}
	s, err := schnorr.ParseSignature(sig[:])
	if err != nil {
		return err
	}
	digest := chainhash.TaggedHash(tag, msg)
	if !s.Verify(digest[:], xOnly) {
		return errors.New("bad signature")
	}

	return nil
}
