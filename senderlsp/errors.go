package senderlsp

import "errors"

// Errors a wallet backend or operator can get back. The API maps each to a
// code; details go to the log.
var (
	// ErrInvalidRequest: the payment request breaks a rule (missing or
	// malformed key, zero or too large amount, unknown retry policy).
	ErrInvalidRequest = errors.New("invalid payment request")

	// ErrUnknownReceiver: the receiver LSP does not know the receiver.
	ErrUnknownReceiver = errors.New("receiver unknown to its LSP")

	// ErrNoInvoice: the receiver has no unused invoice left at its LSP.
	ErrNoInvoice = errors.New("receiver has no invoice left")

	// ErrAmountOutOfRange: the receiver LSP has no invoice for the amount.
	ErrAmountOutOfRange = errors.New("amount out of the receiver's range")

	// ErrBadInvoice: the receiver LSP's invoice is unusable (wrong payee or
	// amount, too close to expiry, or a payment hash already held).
	ErrBadInvoice = errors.New("receiver invoice unusable")

	// ErrReceiverLSPUnreachable: the receiver LSP did not answer.
	ErrReceiverLSPUnreachable = errors.New("receiver LSP unreachable")

	// ErrInsufficientLiquidity: too little outbound liquidity toward the
	// receiver LSP to forward the payment once released.
	ErrInsufficientLiquidity = errors.New("not enough outbound liquidity")

	// ErrNoHTLCSlots: too few free HTLC slots on the channels the payment
	// needs.
	ErrNoHTLCSlots = errors.New("not enough free HTLC slots")

	// ErrNotFound: no such payment.
	ErrNotFound = errors.New("payment not found")

	// ErrNotCancelable: the payment can no longer be canceled: it is
	// settled, or its outbound payment may still succeed (invariant 2).
	ErrNotCancelable = errors.New("payment cannot be canceled now")

	// ErrCreateUnfinished: a retried create found its payment recorded
	// but without its hold invoice: a crash cut the first create short,
	// and the hold's runner has not yet taken the invoice from lnd (or
	// canceled the hold, if lnd never made one). Try again.
	ErrCreateUnfinished = errors.New("payment still being created")

	// ErrStopped: the sender role is shutting down.
	ErrStopped = errors.New("sender role stopped")
)
