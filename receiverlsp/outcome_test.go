package receiverlsp

import (
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// A released item does not move back to pending on the say-so of a
// rejected outcome that does not name its release (issue 16): one without
// a digest (an older sender LSP, or a forgery's refusal), or naming
// another release (an earlier one, out of order). A rejected that names
// the item's release sends dave back to sign again.
func TestRejectedMovesReleasedBackOnlyForItsRelease(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)
	items, _ := rc.client.Mailbox(e.ctx)
	if _, err := rc.client.Release(e.ctx, &items[0], 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.MailboxItem(e.ctx, vertex(senderKey(0)), holdstore.ID(m.HoldID))
	if err != nil || stored.State != holdstore.MailboxReleased {
		t.Fatalf("item %+v (%v), want released", stored, err)
	}
	mine := onionmsg.ReleaseDigest(stored.Release)
	reject := func(d [32]byte) {
		t.Helper()
		err := e.role.applyOutcome(e.ctx, senderKey(0), &onionmsg.HoldOutcome{
			HoldID: m.HoldID, PaymentHash: m.PaymentHash,
			Status: onionmsg.StatusRejected, Reason: "wrong_release_secret",
			ReleaseDigest: d,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	other := mine
	other[0] ^= 1
	for name, d := range map[string][32]byte{"no digest": {}, "another release": other} {
		e.unchanged("a rejected naming "+name, func() { reject(d) })
		if it := e.item(rc, m); it.State != client.StateReleased || it.Version != 2 {
			t.Fatalf("after a rejected with %s: %+v, want released", name, it)
		}
	}
	reject(mine)
	it := e.item(rc, m)
	if it.State != client.StatePending || it.Reason != "wrong_release_secret" || it.Version != 3 {
		t.Fatalf("after a rejected naming its release: %+v, want pending", it)
	}
	// The same refusal again changes nothing more.
	e.unchanged("a repeated rejected", func() { reject(mine) })
}

// TestOutcomeTable walks every (item state, outcome) pair, with and
// without a release on the item, with no digest, the item's digest and
// another one, and a new or repeated reason, and checks afterOutcome
// against the rule written out here, and every edge of the table against
// holdstore's mailbox state machine.
func TestOutcomeTable(t *testing.T) {
	for status, edges := range outcomeTransitions {
		for from, edge := range edges {
			if !holdstore.MailboxLegal(from, edge.to) {
				t.Errorf("%s on %s -> %s: not a mailbox transition", status, from, edge.to)
			}
		}
	}
	rel := []byte{1, 2, 3}
	digests := map[string][32]byte{
		"no digest":      {},
		"its digest":     onionmsg.ReleaseDigest(rel),
		"another digest": onionmsg.ReleaseDigest([]byte{4}),
	}
	statuses := []onionmsg.HoldStatus{onionmsg.StatusReleased,
		onionmsg.StatusSettled, onionmsg.StatusCanceled, onionmsg.StatusRejected}
	for _, from := range holdstore.MailboxStates {
		for _, status := range statuses {
			for _, release := range [][]byte{nil, rel} {
				for dname, d := range digests {
					for _, reason := range []string{"", "old_reason", "new_reason"} {
						it := &holdstore.MailboxItem{State: from, Release: release,
							Reason: "old_reason"}
						m := &onionmsg.HoldOutcome{Status: status, Reason: reason,
							ReleaseDigest: d}
						to, why, ok := afterOutcome(it, m)
						want, wantWhy := wantAfter(from, status, release != nil,
							dname == "its digest", reason)
						if ok != (want != "") || to != want || why != wantWhy {
							t.Errorf("%s (release %v) + %s (%s, reason %q): got %q %q %v, want %q %q",
								from, release != nil, status, dname, reason, to, why, ok,
								want, wantWhy)
						}
					}
				}
			}
		}
	}
}

// wantAfter is the rule of docs/protocol.md, written out case by case: the
// state and reason an item in from moves to on status, or "" if it stays.
func wantAfter(from holdstore.MailboxState, status onionmsg.HoldStatus,
	hasRelease, itsDigest bool, reason string) (holdstore.MailboxState, string) {

	if from.Final() {
		return "", ""
	}
	switch status {
	case onionmsg.StatusReleased:
		if from != holdstore.MailboxReleased && hasRelease {
			return holdstore.MailboxReleased, ""
		}
	case onionmsg.StatusSettled:
		return holdstore.MailboxSettled, ""
	case onionmsg.StatusCanceled:
		return holdstore.MailboxCanceled, orDefault(reason, ReasonCanceled)
	case onionmsg.StatusRejected:
		why := orDefault(reason, ReasonRejected)
		switch {
		case from == holdstore.MailboxPending && why != "old_reason":
			return holdstore.MailboxPending, why
		case from == holdstore.MailboxReleased && hasRelease && itsDigest:
			return holdstore.MailboxPending, why
		}
	}
	return "", ""
}

// A rejected outcome names an ln_signature release by the digest of its
// bytes as relayed: the genuine release's refusal sends the item back, a
// refusal of a forgery over the same signed bytes does not.
func TestRejectedNamesAnLNRelease(t *testing.T) {
	e := newEnv(t)
	rc := e.lnReceiver(0)
	if _, err := rc.client.Register(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)
	items, _ := rc.client.Mailbox(e.ctx)
	if _, err := rc.client.Release(e.ctx, &items[0], 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	relayed := e.out.Sent()[0].Msg.(*onionmsg.ReleaseHeldHTLC)
	forged := *relayed
	if err := forged.SignLN(e.ctx, e.receiver(1).signer); err != nil {
		t.Fatal(err)
	}
	reject := func(rel *onionmsg.ReleaseHeldHTLC) {
		t.Helper()
		d, err := rel.Digest()
		if err != nil {
			t.Fatal(err)
		}
		err = e.role.applyOutcome(e.ctx, senderKey(0), &onionmsg.HoldOutcome{
			HoldID: m.HoldID, PaymentHash: m.PaymentHash,
			Status: onionmsg.StatusRejected, Reason: "bad_signature",
			ReleaseDigest: d,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.unchanged("a refusal of a forgery over the same bytes", func() { reject(&forged) })
	if it := e.item(rc, m); it.State != client.StateReleased {
		t.Fatalf("after the forgery's refusal: %+v, want released", it)
	}
	reject(relayed)
	if it := e.item(rc, m); it.State != client.StatePending || it.Reason != "bad_signature" {
		t.Fatalf("after its release's refusal: %+v, want pending", it)
	}
}
