package bus

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrDrop, wrapped in a handler's error, says the message can never be
	// processed (malformed, unsigned, mis-signed, misdirected): the bus
	// terminates it instead of asking for a redelivery, and counts it.
	// Build such errors with Drop so they carry a reason.
	ErrDrop = errors.New("bus: message dropped")

	// ErrInvalidKey is returned for a node key that is not 33 bytes of a
	// compressed secp256k1 point encoding.
	ErrInvalidKey = errors.New("bus: invalid node key")

	// ErrInvalidKind is returned for a message kind that is not a single
	// subject token of lower-case letters, digits and underscores.
	ErrInvalidKind = errors.New("bus: invalid message kind")

	// ErrInvalidSubject is returned for a subject outside the asynclsp
	// subject space.
	ErrInvalidSubject = errors.New("bus: invalid subject")

	// ErrConfig is returned for an invalid ClientConfig or EmbeddedConfig;
	// the message names the option.
	ErrConfig = errors.New("bus: invalid configuration")

	// ErrPlainText is returned when a non-loopback server would be reached
	// without TLS and the operator did not explicitly allow it.
	ErrPlainText = errors.New("bus: refusing plain-text NATS to a non-loopback host")

	// ErrNotLoopback is returned when the embedded server is asked to
	// listen on anything but a loopback address.
	ErrNotLoopback = errors.New("bus: embedded server listens on loopback only")

	// ErrNoStream is returned when an LSP's inbound stream does not exist:
	// the operator hosting the NATS server has to provision it.
	ErrNoStream = errors.New("bus: inbound stream not provisioned")

	// ErrPublish is returned when a durable message was not acknowledged
	// by JetStream before the context ended. The message may or may not
	// be stored: publish it again with the same message id.
	ErrPublish = errors.New("bus: publish not acknowledged")

	// ErrNoResponders is returned by Request when no LSP serves that kind
	// on the target's request subject right now.
	ErrNoResponders = errors.New("bus: no responders")

	// ErrRequestTimeout is returned by Request when nobody answered
	// before the deadline.
	ErrRequestTimeout = errors.New("bus: request timed out")

	// ErrRejected is returned by Request when the remote LSP rejected the
	// request as malformed or unauthorised; retrying will not help.
	ErrRejected = errors.New("bus: request rejected by remote LSP")

	// ErrUnavailable is returned by Request when the remote LSP failed to
	// handle the request; a retry later may succeed.
	ErrUnavailable = errors.New("bus: remote LSP unavailable")

	// ErrClosed is returned after Close.
	ErrClosed = errors.New("bus: connection closed")
)

// Drop reasons. They label the dropped-messages counter, so they must stay
// a small fixed set.
const (
	// ReasonMalformed: the payload does not decode.
	ReasonMalformed = "malformed"

	// ReasonUnsigned: the payload carries no signature.
	ReasonUnsigned = "unsigned"

	// ReasonBadSignature: the signature does not verify, or is not by the
	// key in the subject.
	ReasonBadSignature = "bad_signature"

	// ReasonMisdirected: the message is not for this LSP.
	ReasonMisdirected = "misdirected"

	// ReasonBadSubject: the bus itself could not parse the subject.
	ReasonBadSubject = "bad_subject"

	// ReasonBlocked: the sending peer is blocked by configuration
	// (ClientConfig.BlockedPeers).
	ReasonBlocked = "blocked"

	// ReasonUnspecified: the handler wrapped ErrDrop without Drop.
	ReasonUnspecified = "unspecified"

	// ReasonOther: Drop was given a reason outside this list (the log has
	// it; the counter does not, to keep its label set bounded).
	ReasonOther = "other"
)

// knownReasons bounds the label values of the dropped counter.
var knownReasons = map[string]bool{
	ReasonMalformed: true, ReasonUnsigned: true, ReasonBadSignature: true,
	ReasonMisdirected: true, ReasonBadSubject: true, ReasonUnspecified: true,
	ReasonBlocked: true,
}

// DropError is a handler error that drops a message for good. It matches
// ErrDrop with errors.Is.
type DropError struct {
	// Reason is one of the Reason constants; it labels the counter.
	Reason string

	// Err is the underlying cause, for the log.
	Err error
}

// Drop returns an error that makes the bus terminate the message and count
// it under reason.
func Drop(reason string, err error) error {
	return &DropError{Reason: reason, Err: err}
}

// Error implements error.
func (e *DropError) Error() string {
	return fmt.Sprintf("%v (%s): %v", ErrDrop, e.Reason, e.Err)
}

// Unwrap exposes both ErrDrop and the cause to errors.Is and errors.As.
func (e *DropError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDrop}
	}
	return []error{ErrDrop, e.Err}
}

// dropReason returns the reason a handler error drops a message, and
// whether it does.
func dropReason(err error) (string, bool) {
	if !errors.Is(err, ErrDrop) {
		return "", false
	}
	var de *DropError
	switch {
	case !errors.As(err, &de) || de.Reason == "":
		return ReasonUnspecified, true
	case knownReasons[de.Reason]:
		return de.Reason, true
	default:
		return ReasonOther, true
	}
}

// LaterError is a handler error that says the message's owner cannot take
// it yet (it is still rebuilding its state, or stopping): the bus hands it
// back for redelivery after After, not acknowledged, and logs it quietly.
type LaterError struct {
	// After is the delay before the redelivery.
	After time.Duration

	// Err says why, for the log.
	Err error
}

// Later returns an error that has the message redelivered after d.
func Later(d time.Duration, err error) error {
	return &LaterError{After: d, Err: err}
}

// Error implements error.
func (e *LaterError) Error() string {
	return fmt.Sprintf("bus: redeliver in %v: %v", e.After, e.Err)
}

// Unwrap exposes the cause.
func (e *LaterError) Unwrap() error { return e.Err }
