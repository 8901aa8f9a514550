// Package lnd is asynclsp's adapter to lnd: the few lnd RPCs asynclsp uses,
// with our own small types, built on lightninglabs/lndclient for TLS,
// macaroons and the version check.
//
// Connect refuses an lnd older than v0.21.0, on another network, or built
// without one of the build tags invoicesrpc, signrpc and chainrpc; the
// error names the RPCs that need the missing tag. (routerrpc has no build
// tag: every lnd serves SendPaymentV2 and TrackPaymentV2.)
//
// # Restarts
//
// An lnd restart does not kill the adapter. Unary calls are repeated with
// backoff while lnd is unreachable, starting or shutting down, for up to
// Config.RetryFor; then they fail with ErrUnavailable. Subscriptions
// (SubscribeSingleInvoice, SendPayment, TrackPayment, SubscribeBlocks,
// SubscribePeerEvents, SubscribeCustomMessages, SubscribeHtlcEvents) are
// re-established for as long as their context lives, and after each
// reconnect the state is read again (LookupInvoice, TrackPaymentV2, the
// block epoch lnd sends on registration, ListPeers) and delivered if it
// changed, so no transition is missed. A payment whose stream broke is
// tracked, not sent again (unless lnd never recorded it). Custom messages
// and HTLC events are events, not state: those of a stream that is down
// are lost. SubscribeHtlcEvents says so with HtlcResubscribed, after which
// its consumer reconciles (ListPendingInvoices pages the OPEN and ACCEPTED
// invoices). SendCustomMessage is the one call tried only once (see there).
//
// # Many held invoices (issue 15)
//
// lnrpc's SubscribeInvoices never reports ACCEPTED or CANCELED (lnd's
// invoice registry holds those back "for backwards compatibility"), so it
// cannot tell that lnd canceled a held HTLC. SubscribeHtlcEvents can: a
// cancel yields a RECEIVE link failure (INVOICE_CANCELED) and a final
// failure, a settle a settle and a final settle, each naming the incoming
// circuit that the invoice HTLC carries (InvoiceHTLC.Circuit). lnd emits
// nothing when it accepts an HTLC. TestRegtest/HtlcEvents checks all this
// on lnd v0.21.1, including a cancel while the payer's link is offline
// (reported once it is back) and a restart of lnd.
//
// # lnd's errors (v0.21)
//
// lnd reports most failures with gRPC code Unknown and a message; the
// adapter maps them to sentinels, wrapped together with lnd's error:
//
//	"unable to locate invoice",
//	"there are no existing invoices"        ErrInvoiceNotFound
//	"invoice with payment hash already exists" ErrInvoiceExists
//	"invoice already settled"               ErrInvoiceSettled (CancelInvoice)
//	"invoice already canceled"              ErrInvoiceCanceled (SettleInvoice)
//	"invoice still open"                    ErrInvoiceOpen (SettleInvoice)
//	AlreadyExists: "invoice is already paid",
//	"payment is in transition"              ErrPaymentExists (SendPayment)
//	NotFound: "payment isn't initiated"     ErrPaymentNotFound (TrackPayment)
//	NotFound: "peer is not connected",
//	"peer <key> disconnected"               ErrPeerNotConnected (SendCustomMessage)
//	Unknown: "shutdown"                     a custom message stream lnd ends
//	                                        as it stops: re-established
//	"htlc event subscription terminated"    an HTLC event stream lnd ends as
//	                                        it stops: re-established
//	Unavailable, "waiting to start...",
//	"...in the process of starting...",
//	"...shutting down", "wallet locked..."  retried, then ErrUnavailable
//
// What lnd itself makes idempotent: SettleInvoice on a settled invoice
// succeeds (a wrong preimage has another hash, so it is ErrInvoiceNotFound),
// and CancelInvoice on a canceled invoice succeeds. Canceling a settled
// invoice is ErrInvoiceSettled, settling a canceled one ErrInvoiceCanceled.
//
// Floor: ground. Owns every call to lnd and the mapping of lnd's errors; it
// imports nothing of asynclsp's.
package lnd
