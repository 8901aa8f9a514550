// Package adminclient is the Go client of asynclspd's admin API (the
// operator's endpoints under /v1/admin: info, tokens, receivers, mailbox,
// stats, the sender role's re-announcement), and the home of its JSON types,
// which the server in package daemon shares. asyncctl uses it. It depends
// on the standard library only.
//
// Floor: top (asyncctl). Owns the admin API's wire types and its client; it
// imports nothing of asynclsp's, so the daemon can share its types.
package adminclient

import "time"

// Info is GET /v1/admin/info: who this daemon is.
type Info struct {
	Version string `json:"version"`

	// NodeKey is the node key of the daemon's lnd: its identity on the bus
	// and the key wallets name as receiver_lsp.
	NodeKey string   `json:"node_key"`
	Network string   `json:"network"`
	Roles   []string `json:"roles"`

	// NATS is "embedded" or "external".
	NATS string `json:"nats"`
}

// Token roles.
const (
	RoleWallet = "wallet"
	RoleAdmin  = "admin"
)

// Token is an API token as listed: never its secret.
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`

	// Revoked tokens stay listed, with the time they were revoked.
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// CreateTokenRequest is the body of POST /v1/admin/tokens.
type CreateTokenRequest struct {
	// Name is who the token acts for: a wallet token's payments are owned
	// by this name. 1 to 64 letters, digits, '.', '_' or '-'.
	Name string `json:"name"`

	// Role is "wallet" or "admin".
	Role string `json:"role"`
}

// CreatedToken is the answer of POST /v1/admin/tokens.
type CreatedToken struct {
	Token Token `json:"token"`

	// Bearer is the whole token to hand over, "<id>.<secret>". It is shown
	// this once: the daemon keeps only a hash of the secret.
	Bearer string `json:"bearer"`
}

// TokenList is the answer of GET /v1/admin/tokens, oldest first.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// InvoiceCounts is a stock of receiver invoices.
type InvoiceCounts struct {
	// Available: never handed out, not expired.
	Available int `json:"available"`

	// Expired: never handed out, expired.
	Expired int `json:"expired"`

	// Reserved: handed out to a sender LSP.
	Reserved int `json:"reserved"`
}

// Receiver is a registered receiver as the operator sees it.
type Receiver struct {
	NodeKey      string        `json:"node_key"`
	WebhookURL   string        `json:"webhook_url"`
	Invoices     InvoiceCounts `json:"invoices"`
	PendingItems int           `json:"pending_items"`
	RegisteredAt time.Time     `json:"registered_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// ReceiverPage is the answer of GET /v1/admin/receivers, by node key.
type ReceiverPage struct {
	Receivers  []Receiver `json:"receivers"`
	NextCursor string     `json:"next_cursor"`
}

// Mailbox item states.
const (
	MailboxPending  = "pending"
	MailboxReleased = "released"
	MailboxSettled  = "settled"
	MailboxCanceled = "canceled"
	MailboxExpired  = "expired"
	MailboxRefused  = "refused"
)

// MailboxStates lists every mailbox state, in the order of a payment's life.
var MailboxStates = []string{MailboxPending, MailboxReleased, MailboxSettled,
	MailboxCanceled, MailboxExpired, MailboxRefused}

// MailboxItem is one held payment in a receiver's mailbox. The release
// secret stays inside: only the receiver reads it, through its own API.
type MailboxItem struct {
	SenderLSP      string    `json:"sender_lsp"`
	HoldID         string    `json:"hold_id"`
	ReceiverKey    string    `json:"receiver_key"`
	PaymentHash    string    `json:"payment_hash"`
	AmountMsat     uint64    `json:"amount_msat"`
	DeadlineHeight uint32    `json:"deadline_height"`
	DeadlineTime   time.Time `json:"deadline_time"`
	State          string    `json:"state"`
	Reason         string    `json:"reason"`
	Version        uint64    `json:"version"`

	// Relayed: the receiver's release reached the bus.
	Relayed   bool      `json:"relayed"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MailboxPage is the answer of GET /v1/admin/mailbox, newest first.
type MailboxPage struct {
	Items      []MailboxItem `json:"items"`
	NextCursor string        `json:"next_cursor"`
}

// Stats is GET /v1/admin/stats: counts across the whole daemon. Every map
// has every state, zero counts included.
type Stats struct {
	Holds     HoldStats      `json:"holds"`
	Mailbox   map[string]int `json:"mailbox"`
	Invoices  InvoiceCounts  `json:"invoices"`
	Receivers int            `json:"receivers"`
	Tokens    TokenStats     `json:"tokens"`
}

// HoldStats are the sender role's holds.
type HoldStats struct {
	// ByState counts holds in each state (CREATED ... CANCELED).
	ByState map[string]int `json:"by_state"`

	// PendingAmountMsat is the sum of the amounts of the holds not yet
	// final: what the LSP may still have to forward.
	PendingAmountMsat uint64 `json:"pending_amount_msat"`
}

// TokenStats counts API tokens.
type TokenStats struct {
	Active  int `json:"active"`
	Revoked int `json:"revoked"`
}

// ReannounceRequest is the body of POST /v1/admin/sender/reannounce.
type ReannounceRequest struct {
	// ReceiverLSP is the node key, in hex, of the receiver LSP that lost
	// the held payments it had stored.
	ReceiverLSP string `json:"receiver_lsp"`
}

// Reannounced is the answer of POST /v1/admin/sender/reannounce.
type Reannounced struct {
	// Reannounced is how many HELD payments will be announced to the
	// receiver LSP again.
	Reannounced int `json:"reannounced"`
}

// The admin API's error codes, each with one HTTP status.
const (
	CodeInvalidRequest   Code = "invalid_request"    // 400
	CodeUnauthorized     Code = "unauthorized"       // 401
	CodeForbidden        Code = "forbidden"          // 403: not an admin token
	CodeNotFound         Code = "not_found"          // 404
	CodeMethodNotAllowed Code = "method_not_allowed" // 405
	CodeRequestTooLarge  Code = "request_too_large"  // 413
	CodeInternal         Code = "internal"           // 500
	CodeUnavailable      Code = "unavailable"        // 503: stopping, or the database is busy
)
