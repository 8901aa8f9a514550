// Package receiverlsp is the receiver LSP's role: it keeps the invoices its
// receivers made (invoice custody), hands one out to a sender LSP per held
// payment (invoice_request), keeps a mailbox of held payments for each
// receiver (held_htlc_available), wakes the receiver with LSPS5 (bLIP-55)
// webhook notifications signed with the node's ln_signature, and relays the
// receiver's signed release to the sender LSP, reporting the outcome back.
//
// Receivers (wallet backends) talk to it over HTTP JSON (Role.Handler; the
// API is in openapi.json and package client is its Go client), and their
// nodes over LSPS0 (Role.LSPS: lsps5.* and asynclsp.*); sender LSPs over
// lspnet (Role.Register). Its state is in holdstore's SQLite file;
// Role.Run owns the background work (deadlines, webhooks, relaying
// releases again after a failure or a restart).
//
// The flow, invariants and the wallet developer's view are in
// docs/receiver-api.md.
//
// Floor: roles. Owns the receiver LSP's state machines and API; it imports the
// ground floor and its own client, never senderlsp or cmd/.
package receiverlsp
