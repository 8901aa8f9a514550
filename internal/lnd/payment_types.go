package lnd

import (
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// PaymentStatus is the state of an outgoing payment.
type PaymentStatus uint8

// Payment states. IN_FLIGHT ends in exactly one of SUCCEEDED or FAILED.
const (
	PaymentInFlight PaymentStatus = iota + 1
	PaymentSucceeded
	PaymentFailed
)

// String returns lnd's name of the status.
func (s PaymentStatus) String() string {
	switch s {
	case PaymentInFlight:
		return "IN_FLIGHT"
	case PaymentSucceeded:
		return "SUCCEEDED"
	case PaymentFailed:
		return "FAILED"
	default:
		return "UNKNOWN"
	}
}

// IsFinal reports whether the payment has ended.
func (s PaymentStatus) IsFinal() bool {
	return s == PaymentSucceeded || s == PaymentFailed
}

// FailureReason says why a payment failed for good.
type FailureReason uint8

// Failure reasons, one for each of lnd's PaymentFailureReason values.
const (
	// FailureNone: the payment has not failed.
	FailureNone FailureReason = iota

	// FailureTimeout: the payment timeout passed before a route worked.
	FailureTimeout

	// FailureNoRoute: no (more) routes to the destination.
	FailureNoRoute

	// FailureError: an unexpected error, or a reason this adapter does
	// not know yet.
	FailureError

	// FailureIncorrectPaymentDetails: the receiver refused the payment
	// (unknown hash, wrong amount, canceled hold invoice).
	FailureIncorrectPaymentDetails

	// FailureInsufficientBalance: not enough outbound liquidity.
	FailureInsufficientBalance

	// FailureCanceled: the payment was canceled (context of a cancelable
	// payment ended).
	FailureCanceled
)

// String returns a short name of the reason.
func (r FailureReason) String() string {
	switch r {
	case FailureNone:
		return "none"
	case FailureTimeout:
		return "timeout"
	case FailureNoRoute:
		return "no_route"
	case FailureError:
		return "error"
	case FailureIncorrectPaymentDetails:
		return "incorrect_payment_details"
	case FailureInsufficientBalance:
		return "insufficient_balance"
	case FailureCanceled:
		return "canceled"
	default:
		return fmt.Sprintf("reason(%d)", uint8(r))
	}
}

// HTLCAttemptStatus is the state of one HTLC of an outgoing payment.
type HTLCAttemptStatus uint8

// HTLC attempt states.
const (
	AttemptInFlight HTLCAttemptStatus = iota + 1
	AttemptSucceeded
	AttemptFailed
)

// String returns lnd's name of the status.
func (s HTLCAttemptStatus) String() string {
	switch s {
	case AttemptInFlight:
		return "IN_FLIGHT"
	case AttemptSucceeded:
		return "SUCCEEDED"
	case AttemptFailed:
		return "FAILED"
	default:
		return "UNKNOWN"
	}
}

// Payment is a snapshot of an outgoing payment.
type Payment struct {
	// Hash is the payment hash.
	Hash lntypes.Hash

	// Status is the payment's state.
	Status PaymentStatus

	// Preimage is set once the payment succeeded.
	Preimage lntypes.Preimage

	// ValueMsat is the amount paid to the destination, without fees.
	ValueMsat lnwire.MilliSatoshi

	// FeeMsat is the routing fee of the settled or in-flight HTLCs.
	FeeMsat lnwire.MilliSatoshi

	// FailureReason is set when Status is PaymentFailed.
	FailureReason FailureReason

	// HTLCs are the payment's HTLC attempts.
	HTLCs []HTLCAttempt
}

// InFlightHTLCs returns how many attempts are still in flight.
func (p Payment) InFlightHTLCs() int {
	n := 0
	for _, h := range p.HTLCs {
		if h.Status == AttemptInFlight {
			n++
		}
	}

	return n
}

// HTLCAttempt is one HTLC sent for a payment.
type HTLCAttempt struct {
	// AttemptID is lnd's id of the attempt.
	AttemptID uint64

	// Status is the attempt's state.
	Status HTLCAttemptStatus

	// AmountMsat is what the attempt delivers to the destination.
	AmountMsat lnwire.MilliSatoshi

	// FeeMsat is the attempt's routing fee.
	FeeMsat lnwire.MilliSatoshi

	// TimeLock is the absolute CLTV expiry of the attempt's first hop.
	TimeLock uint32

	// Hops is the number of hops of the attempt's route.
	Hops int

	// AttemptedAt and ResolvedAt are when the HTLC was sent and resolved.
	AttemptedAt time.Time
	ResolvedAt  time.Time

	// FailureCode is lnd's name of the failure message, e.g.
	// "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS"; empty unless failed.
	FailureCode string

	// FailureSourceIndex is the index of the hop that failed the HTLC
	// (0 is the sender).
	FailureSourceIndex uint32

	// FailureHeight is the block height the failing node reported with
	// INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS (BOLT #4); 0 otherwise.
	FailureHeight uint32
}

// failureReasonFromRPC maps lnd's failure reason to ours. A reason added to
// lnd after v0.21 maps to FailureError.
func failureReasonFromRPC(r lnrpc.PaymentFailureReason) FailureReason {
	switch r {
	case lnrpc.PaymentFailureReason_FAILURE_REASON_NONE:
		return FailureNone
	case lnrpc.PaymentFailureReason_FAILURE_REASON_TIMEOUT:
		return FailureTimeout
	case lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE:
		return FailureNoRoute
	case lnrpc.PaymentFailureReason_FAILURE_REASON_ERROR:
		return FailureError
	case lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS:
		return FailureIncorrectPaymentDetails
	case lnrpc.PaymentFailureReason_FAILURE_REASON_INSUFFICIENT_BALANCE:
		return FailureInsufficientBalance
	case lnrpc.PaymentFailureReason_FAILURE_REASON_CANCELED:
		return FailureCanceled
	default:
		return FailureError
	}
}

// paymentFromRPC converts lnd's payment.
func paymentFromRPC(p *lnrpc.Payment) (Payment, error) {
	hash, err := lntypes.MakeHashFromStr(p.PaymentHash)
	if err != nil {
		return Payment{}, fmt.Errorf("payment hash: %w", err)
	}
	out := Payment{
		Hash:      hash,
		ValueMsat: lnwire.MilliSatoshi(p.ValueMsat),
		FeeMsat:   lnwire.MilliSatoshi(p.FeeMsat),
		HTLCs:     make([]HTLCAttempt, 0, len(p.Htlcs)),
	}

	switch p.Status {
	case lnrpc.Payment_SUCCEEDED:
		out.Status = PaymentSucceeded
		out.Preimage, err = lntypes.MakePreimageFromStr(
			p.PaymentPreimage,
		)
		if err != nil {
			return Payment{}, fmt.Errorf("payment preimage: %w", err)
		}

	case lnrpc.Payment_FAILED:
		out.Status = PaymentFailed
		out.FailureReason = failureReasonFromRPC(p.FailureReason)

	// INITIATED (no HTLC sent yet), IN_FLIGHT and the deprecated UNKNOWN
	// all mean: not ended yet.
	default:
		out.Status = PaymentInFlight
	}

	for _, h := range p.Htlcs {
		out.HTLCs = append(out.HTLCs, attemptFromRPC(h))
	}

	return out, nil
}

// attemptFromRPC converts one of lnd's HTLC attempts.
func attemptFromRPC(h *lnrpc.HTLCAttempt) HTLCAttempt {
	a := HTLCAttempt{AttemptID: h.AttemptId}
	switch h.Status {
	case lnrpc.HTLCAttempt_SUCCEEDED:
		a.Status = AttemptSucceeded
	case lnrpc.HTLCAttempt_FAILED:
		a.Status = AttemptFailed
	default:
		a.Status = AttemptInFlight
	}
	if r := h.Route; r != nil {
		a.AmountMsat = lnwire.MilliSatoshi(r.TotalAmtMsat - r.TotalFeesMsat)
		a.FeeMsat = lnwire.MilliSatoshi(r.TotalFeesMsat)
		a.TimeLock = r.TotalTimeLock
		a.Hops = len(r.Hops)
	}
	if h.AttemptTimeNs != 0 {
		a.AttemptedAt = time.Unix(0, h.AttemptTimeNs)
	}
	if h.ResolveTimeNs != 0 {
		a.ResolvedAt = time.Unix(0, h.ResolveTimeNs)
	}
	if f := h.Failure; f != nil {
		a.FailureCode = f.Code.String()
		a.FailureSourceIndex = f.FailureSourceIndex
		a.FailureHeight = f.Height
	}

	return a
}
