package lnd_test

import (
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// verifyTagged is onionmsg's verifier: the regtest test proves that what
// lnd's signrpc SignMessage (schnorr_sig, tag) produces verifies with the
// exact code senderlsp and receiverlsp use for releases and registrations.
var verifyTagged = onionmsg.VerifyTagged

// The adapter is what a wallet on lnd signs ln_signatures with.
var _ onionmsg.MessageSigner = (*lnd.Client)(nil)
