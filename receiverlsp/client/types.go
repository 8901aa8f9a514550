package client

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// The JSON bodies of the receiver LSP's HTTP API (see openapi.json). The
// server in package receiverlsp uses these same types.

// Hex32 is 32 bytes, hex in JSON: payment hashes and release secrets.
type Hex32 [32]byte

// String returns the bytes in hex.
func (h Hex32) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the bytes as hex.
func (h Hex32) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (h *Hex32) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("%d hex digits, want 64", len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// ChallengeRequest asks for a registration challenge for a node key.
type ChallengeRequest struct {
	NodeKey onionmsg.NodeKey `json:"node_key"`
}

// ChallengeResponse carries the challenge to sign (see Challenge).
type ChallengeResponse struct {
	// Challenge is the challenge's bytes in hex.
	Challenge string `json:"challenge"`

	// LNMessage is the text a wallet signs instead as an ln_signature
	// (Challenge.LNMessage): onionmsg.RegisterMessagePrefix and the
	// challenge in lowercase hex. It is here for wallets that sign text
	// they are handed (CLN's signmessage, the Breez SDK); one that parses
	// the challenge can make it itself.
	LNMessage string `json:"ln_message"`

	ExpiresAt time.Time `json:"expires_at"`
}

// RegisterRequest answers a challenge.
type RegisterRequest struct {
	NodeKey onionmsg.NodeKey `json:"node_key"`

	// Challenge is the challenge as received, in hex.
	Challenge string `json:"challenge"`

	// Signature is node_key's signature of the challenge, in one of two
	// schemes: the 64-byte BIP-340 signature under onionmsg.TagRegister
	// over the challenge bytes, in hex (128 digits); or the ln_signature
	// over the challenge's LNMessage, in zbase32 (104 characters).
	Signature string `json:"signature"`

	// WebhookURL is where wake-ups go: https, or http to a loopback
	// host. Empty for none.
	WebhookURL string `json:"webhook_url,omitempty"`
}

// RegisterResponse carries the bearer token for every later call.
type RegisterResponse struct {
	NodeKey    onionmsg.NodeKey `json:"node_key"`
	Token      string           `json:"token"`
	WebhookURL string           `json:"webhook_url,omitempty"`
}

// UploadRequest hands the LSP a batch of BOLT11 invoices.
type UploadRequest struct {
	Invoices []string `json:"invoices"`
}

// Why an invoice is refused (InvoiceResult.Reason).
const (
	RejectMalformed    = "malformed"     // not a BOLT11 invoice of our network, or a bad signature
	RejectTooLong      = "too_long"      // longer than an invoice_reply carries
	RejectWrongNode    = "wrong_node"    // the destination is not the registered receiver
	RejectExpired      = "expired"       // expired already
	RejectShortLived   = "short_lived"   // expires too soon
	RejectNoRouteHint  = "no_route_hint" // no route hint whose first hop is this LSP
	RejectZeroAmount   = "zero_amount"   // a fixed amount of zero
	RejectDuplicate    = "duplicate"     // its payment hash was seen before
	RejectBlindedPaths = "blinded_paths" // blinded paths instead of route hints
	RejectStockFull    = "stock_full"    // as many available invoices as the LSP keeps already
)

// InvoiceResult is the verdict on one uploaded invoice.
type InvoiceResult struct {
	// Index is the invoice's position in the request.
	Index int `json:"index"`

	// PaymentHash is set when the invoice decoded.
	PaymentHash *Hex32 `json:"payment_hash,omitempty"`

	Accepted bool `json:"accepted"`

	// Reason and Message say why it was refused.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// InvoiceCounts is the receiver's stock of invoices.
type InvoiceCounts struct {
	// Available: not handed out and not expired.
	Available int `json:"available"`

	// Reserved: handed out to a sender LSP.
	Reserved int `json:"reserved"`

	// Expired: expired before anyone asked for them.
	Expired int `json:"expired"`

	// LowThreshold: below this many available, the invoices_low webhook
	// fires.
	LowThreshold int `json:"low_threshold"`
}

// UploadResponse is the verdict on a batch.
type UploadResponse struct {
	Accepted int             `json:"accepted"`
	Rejected int             `json:"rejected"`
	Results  []InvoiceResult `json:"results"`
	Counts   InvoiceCounts   `json:"counts"`
}

// The states of a mailbox item (Item.State).
const (
	StatePending  = "pending"  // waiting for the receiver's release
	StateReleased = "released" // release relayed to the sender LSP
	StateSettled  = "settled"  // paid: final
	StateCanceled = "canceled" // the sender LSP canceled the hold: final
	StateExpired  = "expired"  // the deadline passed without a release
	StateRefused  = "refused"  // never admitted (mailbox full): final
)

// FinalState reports whether an item in state s can no longer change.
func FinalState(s string) bool {
	return s == StateSettled || s == StateCanceled || s == StateRefused
}

// Item is one held payment in the receiver's mailbox: what the receiver
// needs to sign its release, and where the payment stands.
type Item struct {
	SenderLSP      onionmsg.NodeKey    `json:"sender_lsp"`
	HoldID         onionmsg.HoldID     `json:"hold_id"`
	ReceiverKey    onionmsg.NodeKey    `json:"receiver_key"`
	PaymentHash    Hex32               `json:"payment_hash"`
	AmountMsat     lnwire.MilliSatoshi `json:"amount_msat"`
	DeadlineHeight uint32              `json:"deadline_height"`
	DeadlineTime   time.Time           `json:"deadline_time"`
	ReleaseSecret  Hex32               `json:"release_secret"`

	State string `json:"state"`

	// Reason is why the item was canceled, refused or expired, or why the
	// sender LSP rejected the last release (the item is then pending
	// again).
	Reason string `json:"reason,omitempty"`

	// Version grows with every change; wait for a newer one with
	// ?after=Version.
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Sign, in a listing or a read of a pending item, is a release of
	// it as text, valid for minutes, for a wallet that signs only with signmessage (an
	// ln_signature): sign it exactly and send it with the signature to
	// asynclsp.release_ln. Empty when the LSP offers none.
	Sign string `json:"sign,omitempty"`
}

// Held returns the held_htlc_available the item stands for, which a release
// answers.
func (it *Item) Held() *onionmsg.HeldHTLCAvailable {
	return &onionmsg.HeldHTLCAvailable{
		HoldID:         it.HoldID,
		PaymentHash:    lntypes.Hash(it.PaymentHash),
		Amount:         it.AmountMsat,
		DeadlineHeight: it.DeadlineHeight,
		DeadlineTime:   it.DeadlineTime,
		SenderLSPKey:   it.SenderLSP,
		ReceiverKey:    it.ReceiverKey,
		ReleaseSecret:  it.ReleaseSecret,
	}
}

// MailboxResponse lists pending items, oldest first.
type MailboxResponse struct {
	Items []Item `json:"items"`

	// More: over LSPS0, the items that fit in one message (65533 bytes)
	// are listed and more are pending; release some and list again.
	More bool `json:"more,omitempty"`
}

// ReleaseRequest posts a signed release_held_htlc.
type ReleaseRequest struct {
	// Release is the release's TLV bytes (its signature included, BIP-340
	// or ln_signature) in hex.
	Release string `json:"release"`
}

// The error codes of the API (ErrorBody.Code), each with one HTTP status.
const (
	CodeInvalidRequest  = "invalid_request"   // 400: malformed input, bad signature, expired challenge or release
	CodeUnauthorized    = "unauthorized"      // 401: no or wrong bearer token
	CodeForbidden       = "forbidden"         // 403: a release for another receiver
	CodeNotFound        = "not_found"         // 404: no such route or mailbox item
	CodeConflict        = "conflict"          // 409: replayed challenge, release that does not match, item no longer pending
	CodePayloadTooLarge = "payload_too_large" // 413: body over the route's limit, or too many invoices
	CodeUnavailable     = "unavailable"       // 503: the bus or the database failed; retry
	CodeInternal        = "internal"          // 500
)

// ErrorBody says what went wrong.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}
