package receiverlsp

import (
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// guard is a condition an outcome's transition needs besides the item's
// state.
type guard int

const (
	// always: the outcome is the sender LSP's word on the hold itself.
	always guard = iota

	// hasRelease: the item holds a release (one was relayed): a claim
	// that a release was accepted is believed only then.
	hasRelease

	// newReason: the refusal says something new (another reason).
	newReason

	// namesItsRelease: the outcome's release_digest names the release the
	// item holds. A refusal of any other release (an earlier one, a
	// forgery relayed by whoever, one overtaken by the genuine release)
	// concerns nothing the item is waiting for.
	namesItsRelease
)

// outcomeEdge is where an outcome moves an item, and on which condition.
type outcomeEdge struct {
	to    holdstore.MailboxState
	guard guard
}

// outcomeTransitions is what each hold_outcome may do to a mailbox item,
// by the item's state: a state not listed for an outcome is left as it is
// (final items, expired on a rejected, released on a released). Every edge
// is one holdstore's mailbox state machine allows (TestOutcomeTable).
//
//	outcome    from                      to         only if
//	released   pending, expired          released   the item holds a release
//	settled    pending, released,        settled
//	           expired
//	canceled   pending, released,        canceled   (reason)
//	           expired
//	rejected   pending                   pending    the reason is new
//	rejected   released                  pending    release_digest names the
//	                                                item's release
//
// A released item never moves back on the say-so of an outcome that does
// not name its release: a genuine release supersedes every refusal of an
// earlier or forged one (issue 16, invariant 7).
var outcomeTransitions = map[onionmsg.HoldStatus]map[holdstore.MailboxState]outcomeEdge{
	onionmsg.StatusReleased: {
		holdstore.MailboxPending: {holdstore.MailboxReleased, hasRelease},
		holdstore.MailboxExpired: {holdstore.MailboxReleased, hasRelease},
	},
	onionmsg.StatusSettled: {
		holdstore.MailboxPending:  {holdstore.MailboxSettled, always},
		holdstore.MailboxReleased: {holdstore.MailboxSettled, always},
		holdstore.MailboxExpired:  {holdstore.MailboxSettled, always},
	},
	onionmsg.StatusCanceled: {
		holdstore.MailboxPending:  {holdstore.MailboxCanceled, always},
		holdstore.MailboxReleased: {holdstore.MailboxCanceled, always},
		holdstore.MailboxExpired:  {holdstore.MailboxCanceled, always},
	},
	onionmsg.StatusRejected: {
		holdstore.MailboxPending:  {holdstore.MailboxPending, newReason},
		holdstore.MailboxReleased: {holdstore.MailboxPending, namesItsRelease},
	},
}

// outcomeReason is the reason an item takes from an outcome that moves it.
func outcomeReason(m *onionmsg.HoldOutcome) string {
	switch m.Status {
	case onionmsg.StatusCanceled:
		return orDefault(m.Reason, ReasonCanceled)
	case onionmsg.StatusRejected:
		return orDefault(m.Reason, ReasonRejected)
	}
	return ""
}

// afterOutcome is the mailbox item's transition on a hold_outcome, from
// outcomeTransitions: the state and reason it moves to, or false if the
// outcome changes nothing.
func afterOutcome(it *holdstore.MailboxItem, m *onionmsg.HoldOutcome) (
	holdstore.MailboxState, string, bool) {

	edge, ok := outcomeTransitions[m.Status][it.State]
	if !ok {
		return "", "", false
	}
	reason := outcomeReason(m)
	switch edge.guard {
	case hasRelease:
		ok = it.Release != nil
	case newReason:
		ok = reason != it.Reason
	case namesItsRelease:
		ok = it.Release != nil && m.ReleaseDigest != [32]byte{} &&
			m.ReleaseDigest == onionmsg.ReleaseDigest(it.Release)
	}
	if !ok {
		return "", "", false
	}
	return edge.to, reason, true
}
