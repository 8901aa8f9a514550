package onionmsg

import "errors"

// Decoding errors. Every decoder in this package rejects malformed input with
// one of these, wrapped with detail (the record type, the field); match them
// with errors.Is.
var (
	// ErrTruncated means the input ends inside a record.
	ErrTruncated = errors.New("onionmsg: truncated input")

	// ErrOversize means the input is longer than the message allows.
	ErrOversize = errors.New("onionmsg: input too large")

	// ErrUnknownEvenType means the stream holds an even record type this
	// version does not know. Even types must be understood; unknown odd
	// types are skipped (and kept, see the ExtraRecords fields).
	ErrUnknownEvenType = errors.New("onionmsg: unknown even record type")

	// ErrDuplicateType means a record type appears twice.
	ErrDuplicateType = errors.New("onionmsg: duplicate record type")

	// ErrOutOfOrder means the record types are not in ascending order.
	ErrOutOfOrder = errors.New("onionmsg: record types out of order")

	// ErrNonCanonicalVarInt means a type or length is not minimally
	// encoded as a BigSize varint.
	ErrNonCanonicalVarInt = errors.New("onionmsg: varint not minimally encoded")

	// ErrWrongLength means a record's length does not fit its field: a
	// fixed-size field of another size, or a variable one over its limit.
	ErrWrongLength = errors.New("onionmsg: wrong record length")

	// ErrMissingRecord means a required record is absent.
	ErrMissingRecord = errors.New("onionmsg: missing required record")

	// ErrConflictingRecords means records that exclude each other are
	// both present (an invoice_reply with an invoice and an error, a
	// release with a BIP-340 signature and an ln_signature).
	ErrConflictingRecords = errors.New("onionmsg: conflicting records")

	// ErrInvalidValue means a record is well formed but its value is not
	// allowed (a zero amount, an unknown status, text that is not UTF-8).
	ErrInvalidValue = errors.New("onionmsg: invalid value")

	// ErrUnsupportedVersion means an envelope of a version this code does
	// not speak.
	ErrUnsupportedVersion = errors.New("onionmsg: unsupported envelope version")

	// ErrUnknownMessageType means a message type number this code does
	// not know.
	ErrUnknownMessageType = errors.New("onionmsg: unknown message type")

	// ErrWrongMessageType means a known message type other than the one
	// the caller asked for.
	ErrWrongMessageType = errors.New("onionmsg: wrong message type")

	// ErrInvalidKey means 33 bytes that are not a compressed secp256k1
	// point (or 32 that are not an x-only one).
	ErrInvalidKey = errors.New("onionmsg: invalid public key")

	// ErrInvalidSignatureEncoding means 64 bytes that cannot be a BIP-340
	// signature: r is not below the field size p, or s not below the
	// group order n; or 65 that are not an ln_signature a release may
	// carry: a header other than 31..34, r or s outside [1, n-1], or s
	// over n/2.
	ErrInvalidSignatureEncoding = errors.New("onionmsg: invalid signature encoding")
)

// Verification errors, returned by VerifyTagged, VerifyRelease and
// VerifyEnvelope.
var (
	// ErrBadSignature means the signature does not verify under the key.
	ErrBadSignature = errors.New("onionmsg: bad signature")

	// ErrWrongKey means the message names a signer other than the one
	// expected: a release by another key than the invoice's destination,
	// an envelope from another LSP than the one it arrived from.
	ErrWrongKey = errors.New("onionmsg: signed by the wrong key")

	// ErrMisdirected means a message meant for another LSP: a release for
	// another sender LSP, an envelope addressed to another node.
	ErrMisdirected = errors.New("onionmsg: message for another node")

	// ErrExpired means a release past its expiry (beyond the allowed skew).
	ErrExpired = errors.New("onionmsg: release expired")

	// ErrFromFuture means a message dated further ahead than the allowed
	// clock skew.
	ErrFromFuture = errors.New("onionmsg: message dated in the future")

	// ErrInvalidLifetime means a release that expires before it is
	// created.
	ErrInvalidLifetime = errors.New("onionmsg: release expires before it is created")

	// ErrHoldMismatch means a release for another hold id.
	ErrHoldMismatch = errors.New("onionmsg: hold id mismatch")

	// ErrHashMismatch means a release for another payment hash.
	ErrHashMismatch = errors.New("onionmsg: payment hash mismatch")

	// ErrSecretMismatch means a release carrying the wrong release secret.
	ErrSecretMismatch = errors.New("onionmsg: release secret mismatch")

	// ErrInvalidTag means a signing tag that is empty or that lnd refuses
	// (one starting with "BIP0340" or "TapSighash").
	ErrInvalidTag = errors.New("onionmsg: invalid signing tag")
)
