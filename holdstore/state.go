package holdstore

import (
	"fmt"
	"slices"
)

// State is where a hold is in its life. The names are stored as text in the
// database and shown to operators as they are.
type State string

// The states of a hold, in the order of the happy path. SETTLED and CANCELED
// are final.
const (
	// StateNone is the "from" state of the event that creates a hold.
	StateNone State = ""

	// StateCreated: the hold invoice is issued, no HTLC has arrived yet.
	StateCreated State = "CREATED"

	// StateHeld: lnd accepted the sender's HTLCs; the hold waits for a
	// release from the receiver.
	StateHeld State = "HELD"

	// StateReleased: a valid release is recorded; the outbound payment is
	// about to be made.
	StateReleased State = "RELEASED"

	// StateForwarding: an outbound payment attempt is (or may be) in flight.
	// Entering it again records the start of a further attempt.
	StateForwarding State = "FORWARDING"

	// StateSettled: the preimage is known. The hold invoice is settled with
	// it, across restarts too, until the hold is marked resolved.
	StateSettled State = "SETTLED"

	// StateCanceled: the hold will not be paid out. The hold invoice is
	// canceled, giving the sender its funds back, until the hold is marked
	// resolved.
	StateCanceled State = "CANCELED"
)

// States lists every state a stored hold can be in, in happy-path order.
var States = []State{
	StateCreated, StateHeld, StateReleased, StateForwarding, StateSettled,
	StateCanceled,
}

// Final reports whether no transition leaves s.
func (s State) Final() bool {
	return s == StateSettled || s == StateCanceled
}

// Valid reports whether s is one of States.
func (s State) Valid() bool {
	return slices.Contains(States, s)
}

// transitions is the state machine of DESIGN.md: for each state, the states
// a hold may move to from it. Anything not listed is illegal.
//
// FORWARDING -> FORWARDING starts a further outbound attempt after one failed
// for a reason the retry policy allows. FORWARDING -> CANCELED is legal in
// the table; the caller must only take it once the outbound payment has failed
// for good (invariant 2), which only lnd can tell.
var transitions = map[State][]State{
	StateNone:       {StateCreated},
	StateCreated:    {StateHeld, StateCanceled},
	StateHeld:       {StateReleased, StateCanceled},
	StateReleased:   {StateForwarding, StateCanceled},
	StateForwarding: {StateForwarding, StateSettled, StateCanceled},
}

// Legal reports whether the table allows moving from one state to another.
func Legal(from, to State) bool {
	return slices.Contains(transitions[from], to)
}

// checkLegal returns an error naming both states when from -> to is illegal.
func checkLegal(from, to State) error {
	if !Legal(from, to) {
		return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition,
			from.orNone(), to.orNone())
	}
	return nil
}

func (s State) orNone() string {
	if s == StateNone {
		return "(none)"
	}
	return string(s)
}
