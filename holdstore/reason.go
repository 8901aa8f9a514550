package holdstore

// Reason says why a hold failed or was canceled. A hold keeps the most
// specific reason it has been given: when several failures race (an outbound
// attempt fails with no route, then the deadline passes), the stored reason is
// the one that explains most, never a generic one over a specific one.
type Reason string

// The reasons, from the most generic to the most specific. Their order here is
// their precedence (see Rank); the README lists it for operators.
const (
	// ReasonNone: no failure recorded.
	ReasonNone Reason = ""

	// ReasonInternal: something inside asynclsp failed; the log says what.
	ReasonInternal Reason = "internal"

	// ReasonDeadline: no valid release came before the hold's deadline
	// (incoming HTLC expiry minus the safety margin).
	ReasonDeadline Reason = "deadline"

	// ReasonMaxHoldTime: the sender's maximum hold time passed.
	ReasonMaxHoldTime Reason = "max_hold_time"

	// ReasonTimeout: the outbound payment did not complete within its
	// timeout.
	ReasonTimeout Reason = "timeout"

	// ReasonCanceledBySender: the wallet backend canceled the payment.
	ReasonCanceledBySender Reason = "canceled_by_sender"

	// ReasonCanceledByOperator: the LSP's operator canceled the hold.
	ReasonCanceledByOperator Reason = "canceled_by_operator"

	// ReasonHoldInvoiceCanceled: lnd canceled the hold invoice itself (it
	// expired unpaid, or was canceled outside asynclsp).
	ReasonHoldInvoiceCanceled Reason = "hold_invoice_canceled"

	// ReasonReleasedTooLate: a valid release came, but too few blocks were
	// left before the incoming expiry to pay the receiver safely.
	ReasonReleasedTooLate Reason = "released_too_late"

	// ReasonNoRoute: no route to the receiver was found.
	ReasonNoRoute Reason = "no_route"

	// ReasonInsufficientLiquidity: routes existed but could not carry the
	// amount (local balance, or a channel along the way, or the receiver's
	// inbound capacity).
	ReasonInsufficientLiquidity Reason = "insufficient_liquidity"

	// ReasonReceiverInvoiceExpired: the receiver's invoice expired before it
	// could be paid.
	ReasonReceiverInvoiceExpired Reason = "receiver_invoice_expired"

	// ReasonReceiverRejected: the receiver's node refused the payment
	// (incorrect or unknown payment details).
	ReasonReceiverRejected Reason = "receiver_rejected"
)

// Reasons lists every reason in order of precedence, the most generic first.
var Reasons = []Reason{
	ReasonInternal, ReasonDeadline, ReasonMaxHoldTime, ReasonTimeout,
	ReasonCanceledBySender, ReasonCanceledByOperator,
	ReasonHoldInvoiceCanceled, ReasonReleasedTooLate, ReasonNoRoute,
	ReasonInsufficientLiquidity, ReasonReceiverInvoiceExpired,
	ReasonReceiverRejected,
}

// Rank is the precedence of r: a higher rank is more specific. ReasonNone and
// unknown reasons rank 0.
func (r Reason) Rank() int {
	for i, known := range Reasons {
		if known == r {
			return i + 1
		}
	}
	return 0
}

// Valid reports whether r is one of Reasons.
func (r Reason) Valid() bool {
	return r.Rank() > 0
}

// MoreSpecific returns whichever of a and b ranks higher, a on a tie.
func MoreSpecific(a, b Reason) Reason {
	if b.Rank() > a.Rank() {
		return b
	}
	return a
}
