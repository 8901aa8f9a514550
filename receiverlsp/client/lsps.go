package client

// The receiver LSP's methods over LSPS0 (bLIP-50): JSON-RPC 2.0 in BOLT8
// messages of type 37913 from the receiver's node, where BOLT8 authenticates
// the caller, or the same JSON-RPC bodies posted to POST /v1/lsps0 with a
// bearer token. LSPS5's webhook methods (bLIP-55) and asynclsp's own, under
// the prefix asynclsp., with the same params and results as the HTTP
// routes they mirror. docs/protocol.md ("asynclsp over LSPS0") lists them.

// The method names.
const (
	MethodSetWebhook    = "lsps5.set_webhook"
	MethodListWebhooks  = "lsps5.list_webhooks"
	MethodRemoveWebhook = "lsps5.remove_webhook"

	MethodAddInvoices  = "asynclsp.add_invoices"  // POST /v1/invoices
	MethodInvoiceStock = "asynclsp.invoice_stock" // GET /v1/invoices
	MethodListMailbox  = "asynclsp.list_mailbox"  // GET /v1/mailbox
	MethodGetItem      = "asynclsp.get_item"      // GET /v1/mailbox/{sender_lsp}/{hold_id}
	MethodRelease      = "asynclsp.release"       // POST /v1/releases
	MethodReleaseLN    = "asynclsp.release_ln"    // a release signed with signmessage
)

// LSPS5's error codes (55:241-285).
const (
	LSPS5TooLong             = 500  // app_name or webhook too long
	LSPS5URLParseError       = 501  // webhook is not a URL
	LSPS5UnsupportedProtocol = 502  // webhook is not https
	LSPS5TooManyWebhooks     = 503  // data.max_webhooks says how many are allowed
	LSPS5AppNameNotFound     = 1010 // remove_webhook of an app_name not set
)

// The error codes of the asynclsp.* methods, in the range bLIP-50 leaves to
// applications outside the LSPSpec (-31999 to -1, 50:475-477): -31000 less
// the HTTP status the same error has on the HTTP API, whose code string
// (ErrorBody.Code) they match. Malformed params are -32602, anything
// unexpected -32603, as LSPS0 has it.
const (
	LSPSInvalidRequest = -31400 // invalid_request
	LSPSForbidden      = -31403 // forbidden
	LSPSNotFound       = -31404 // not_found
	LSPSConflict       = -31409 // conflict
	LSPSTooLarge       = -31413 // payload_too_large
	LSPSUnavailable    = -31503 // unavailable: retry
)

// SetWebhookParams are lsps5.set_webhook's params.
type SetWebhookParams struct {
	AppName string `json:"app_name"`
	Webhook string `json:"webhook"`
}

// SetWebhookResult is lsps5.set_webhook's result.
type SetWebhookResult struct {
	NumWebhooks int  `json:"num_webhooks"`
	MaxWebhooks int  `json:"max_webhooks"`
	NoChange    bool `json:"no_change"`
}

// ListWebhooksResult is lsps5.list_webhooks' result.
type ListWebhooksResult struct {
	AppNames    []string `json:"app_names"`
	MaxWebhooks int      `json:"max_webhooks"`
}

// RemoveWebhookParams are lsps5.remove_webhook's params.
type RemoveWebhookParams struct {
	AppName string `json:"app_name"`
}

// TooManyWebhooksData is the data of a too_many_webhooks error.
type TooManyWebhooksData struct {
	MaxWebhooks int `json:"max_webhooks"`
}

// GetItemParams are asynclsp.get_item's params.
type GetItemParams struct {
	SenderLSP string `json:"sender_lsp"`
	HoldID    string `json:"hold_id"`
}

// ReleaseLNParams are asynclsp.release_ln's params: a mailbox item's Sign
// text, signed with signmessage (lnd, CLN, LDK Node, Breez SDK).
type ReleaseLNParams struct {
	Message   string `json:"message"`
	Signature string `json:"signature"`
}
