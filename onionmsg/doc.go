// Package onionmsg defines the messages that pass between a sender LSP, a
// receiver LSP and a receiver, their strict TLV encoding, and the signatures
// that make a release (and an envelope, and a registration) trustworthy:
// BIP-340, or for what a wallet signs, an ln_signature as well.
//
// # Messages
//
//	type       name                  from -> to
//	72         held_htlc_available   sender LSP -> receiver LSP (-> receiver)
//	74         release_held_htlc     receiver -> receiver LSP -> sender LSP
//	7_000_000  invoice_request       sender LSP -> receiver LSP
//	7_000_002  invoice_reply         receiver LSP -> sender LSP
//	7_000_004  hold_outcome          sender LSP -> receiver LSP
//
// 72 and 74 are LDK's numbers for the async payment onion messages. The
// other three are asynclsp's own, from the even range 7_000_000..7_000_098,
// which nothing in the BOLTs, lnd or LDK uses. All are even: a node that does
// not know them must not pretend it does.
//
// # Encoding
//
// Every message is a TLV stream as in BOLT 1: records of [BigSize type]
// [BigSize length] [value], types strictly ascending, each at most once,
// varints minimally encoded. Integers are fixed-width big-endian (u8, u16,
// u32, u64); times are u64 unix seconds; node keys are 33-byte compressed
// secp256k1 points; signatures are 64-byte BIP-340 signatures (r || s), or
// for a release, a 65-byte ln_signature (header || r || s).
//
// One numbering serves every message, so a field has the same type wherever
// it appears. R marks a record the message requires, O one it may carry, 1
// a record of a pair of which the message carries exactly one.
//
//	type  field            value                  ireq irep held rel  out
//	0     hold_id          16 bytes               R    R    R    R    R
//	2     payment_hash     32 bytes                         R    R    R
//	4     amount_msat      u64, not 0             R         R
//	6     sender_lsp_key   33 bytes                         R    R
//	8     receiver_key     33 bytes               R         R    R
//	10    release_secret   32 bytes, not all 0              R    R
//	12    created_at       u64 unix seconds                      R
//	14    expires_at       u64 unix seconds                      R
//	16    deadline_height  u32 block height                 R
//	18    deadline_time    u64 unix seconds                 R
//	20    min_expiry       u64 unix seconds       R
//	22    invoice          1..7089 ASCII 0x21-7e       O
//	24    error_code       u16: 1 unknown_receiver,    O
//	                       2 no_invoices_left,
//	                       3 amount_out_of_range
//	26    error_message    1..256 bytes UTF-8          O
//	28    status           u8: 1 released, 2 settled,            R
//	                       3 canceled, 4 rejected
//	30    reason           1..64 ASCII 0x21-7e                   O
//	33    release_digest   32 bytes, not all 0                   O
//	240   signature        64 bytes BIP-340                  1
//	242   ln_signature     65 bytes: header 31..34,          1
//	                       r, s in [1, n-1], s <= n/2
//
// An invoice_reply carries invoice, or error_code with an optional
// error_message, never both. A release_held_htlc carries signature or
// ln_signature, never both. Times are whole seconds up to the year 9999.
//
// release_digest names the release a hold_outcome concerns: the SHA-256 of
// that release's TLV stream exactly as relayed, signature record included
// (ReleaseDigest). The signature is in it on purpose: a refusal of a
// forgery over the same signed bytes must not name the genuine release. And
// the stream is the only encoding of what the receiver signed: BIP-340
// signatures cannot be altered and stay valid, and an ln_signature is taken
// only in its low-s form (ECDSA's one malleation, s to n-s, would otherwise
// give a second valid release, and a second digest, for one signing). The
// sender LSP sets it on rejected (the release refused)
// and on released (the release accepted); the receiver LSP lets a rejected
// move an item back from released only if it names the release the item
// holds. It is odd, so a receiver LSP that predates it still parses the
// outcome and skips the record. (31 is left free: the test fixtures use it
// as an example of an unknown odd record.)
//
// The envelope that carries a message over the bus has its own types:
//
//	type  field       value
//	0     version     u8, 1 (always the first record)
//	2     msg_type    u64, one of the five types above
//	4     msg_id      16 bytes
//	6     from        33 bytes, the sending LSP's node key
//	8     to          33 bytes, the receiving LSP's node key
//	10    sent_at     u64 unix seconds
//	12    payload     0..8192 bytes, the message's TLV stream
//	240   signature   64 bytes BIP-340 by from
//
// Every envelope record is required.
//
// # Strict decoding
//
// Decoders never panic. They reject, each with its own error: input over the
// message's maximum size (ErrOversize), input ending inside a record
// (ErrTruncated), an unknown even type (ErrUnknownEvenType), a type repeated
// (ErrDuplicateType) or lower than the one before (ErrOutOfOrder), a
// non-minimal varint (ErrNonCanonicalVarInt), a length that does not fit the
// field (ErrWrongLength), a missing required record (ErrMissingRecord),
// records that exclude each other (ErrConflictingRecords), a value out of its
// domain (ErrInvalidValue), a key that is not a point (ErrInvalidKey), a
// signature with r >= p or s >= n (ErrInvalidSignatureEncoding), another
// envelope version (ErrUnsupportedVersion) and an unknown message type
// (ErrUnknownMessageType). Unknown odd records are skipped and kept in the
// message's ExtraRecords, so a decoded message re-encodes to exactly the
// bytes it came from: a successful decode is the only decode of those bytes.
//
// # Signatures
//
// Two schemes. The first is BIP-340 Schnorr by a node key over a tagged
// hash:
//
//	digest    = sha256(sha256(tag) || sha256(tag) || signed_bytes)
//	signature = BIP340_Sign(node_private_key, digest)
//
// which is what lnd's signrpc SignMessage returns for msg=signed_bytes,
// tag=tag, schnorr_sig=true, with the node key (key family 6, index 0).
// It is verified against the x-only form of the expected key.
//
//	what               tag                              signed_bytes
//	release_held_htlc  "asynclsp/release_held_htlc/v1"  the release's stream without record 240
//	envelope           "asynclsp/envelope/v1"           the envelope's stream without record 240
//	registration       "asynclsp/register/v1"           the receiver LSP's challenge
//
// "Without record 240" means every other record, unknown odd ones included,
// in ascending type order, exactly as they are on the wire; the signature
// record is then added in its place in the order. ReleaseHeldHTLC.SignedBytes
// and Envelope.SignedBytes return these bytes, and testdata/golden holds a
// worked example of each (the stream, the signed bytes, the digest).
//
// Only lnd's signrpc makes BIP-340 signatures with a node key. Every other
// wallet (CLN, LDK Node, the Breez SDK) signs only with signmessage, and CLN
// and Breez sign text. So what a wallet signs, a release or a registration,
// is also taken as an ln_signature (bLIP-50): a recoverable ECDSA signature
// by the node key over
//
//	digest    = sha256(sha256("Lightning Signed Message:" || text))
//
// 65 bytes (a header 31..34, r, s), zbase32 in text (104 lowercase
// characters), where text is printable ASCII:
//
//	what               text
//	release_held_htlc  "asynclsp release: DO NOT SIGN THIS MESSAGE MANUALLY: " || hex(signed_bytes)
//	registration       "asynclsp register: DO NOT SIGN THIS MESSAGE MANUALLY: " || hex(challenge)
//
// with hex in lowercase and signed_bytes the release's stream without its
// signature record (240 or 242), as above. The release then carries the
// signature's 65 bytes, s low, as record 242 in place of record 240
// (ReleaseHeldHTLC.LNMessage, SignLN, ReleaseFromLNMessage; testdata/golden
// has the worked example release_held_htlc_ln, signed by the secret key 1).
// It is verified by recovering the key and comparing it with the one
// expected, never against a node graph, since a private wallet is in none.
//
// The sender LSP trusts a release only through VerifyRelease: signed by the
// invoice's destination key, naming this sender LSP, for this hold and
// payment hash, carrying the hold's release secret, and within its validity
// window give or take a configured clock skew. A receiver LSP trusts an
// envelope only through VerifyEnvelope: signed by the LSP it came from and
// addressed to itself.
//
// Floor: ground. Owns the message formats and their signatures; it imports
// nothing of asynclsp's.
package onionmsg
