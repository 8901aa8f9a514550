package holdstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

func TestReasonPrecedence(t *testing.T) {
	for i, r := range Reasons {
		if r.Rank() != i+1 || !r.Valid() {
			t.Fatalf("%s: rank %d at position %d", r, r.Rank(), i)
		}
	}
	if ReasonNone.Rank() != 0 || Reason("bored").Valid() {
		t.Fatal("none and unknown reasons must rank 0")
	}
	// The documented order: generic causes below specific ones.
	order := []Reason{ReasonInternal, ReasonDeadline, ReasonTimeout,
		ReasonReleasedTooLate, ReasonNoRoute, ReasonInsufficientLiquidity,
		ReasonReceiverRejected}
	for i := 1; i < len(order); i++ {
		if order[i].Rank() <= order[i-1].Rank() {
			t.Fatalf("%s must rank above %s", order[i], order[i-1])
		}
		if MoreSpecific(order[i-1], order[i]) != order[i] ||
			MoreSpecific(order[i], order[i-1]) != order[i] {
			t.Fatalf("MoreSpecific(%s, %s) wrong", order[i-1], order[i])
		}
	}
}

// A failed outbound attempt records a specific reason; the deadline that
// cancels the hold later must not overwrite it with its generic one.
func TestCancelKeepsMostSpecificReason(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h, p := holdIn(t, s, StateForwarding)
	if _, err := s.Apply(ctx, step(h.ID, p, StateForwarding, StateForwarding,
		ReasonNoRoute)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, h.ID); got.Reason != ReasonNoRoute || got.Attempts != 2 {
		t.Fatalf("after retry: reason %s, attempts %d", got.Reason, got.Attempts)
	}
	ev, err := s.Apply(ctx, step(h.ID, p, StateForwarding, StateCanceled, ReasonDeadline))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason != ReasonNoRoute || !ev.Final {
		t.Fatalf("final event reason %s final %v, want no_route", ev.Reason, ev.Final)
	}
	if got := mustGet(t, s, h.ID); got.Reason != ReasonNoRoute {
		t.Fatalf("stored reason %s, want no_route", got.Reason)
	}

	// And a specific reason does replace a generic one.
	h2, p2 := holdIn(t, s, StateForwarding)
	s.Apply(ctx, step(h2.ID, p2, StateForwarding, StateForwarding, ReasonTimeout))
	ev, err = s.Apply(ctx, step(h2.ID, p2, StateForwarding, StateCanceled,
		ReasonInsufficientLiquidity))
	if err != nil || ev.Reason != ReasonInsufficientLiquidity {
		t.Fatalf("reason %s (%v), want insufficient_liquidity", ev.Reason, err)
	}
	checkLog(t, s)
}

// Transitions that leave a state race as compare-and-sets: exactly one wins.
// (FORWARDING -> FORWARDING leaves the state as it was, so it excludes
// nothing; the sender LSP drives each hold from one goroutine.)
func TestRacingFinalTransitionsOneWins(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		h, p := holdIn(t, s, StateForwarding)
		trs := []Transition{
			step(h.ID, p, StateForwarding, StateSettled, ReasonNone),
			step(h.ID, p, StateForwarding, StateCanceled, ReasonNoRoute),
			step(h.ID, p, StateForwarding, StateCanceled, ReasonDeadline),
		}
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins []Event
		)
		for _, tr := range trs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ev, err := s.Apply(ctx, tr)
				if err != nil && !errors.Is(err, ErrStaleTransition) {
					t.Errorf("%s -> %s: %v", tr.From, tr.To, err)
				}
				if err == nil {
					mu.Lock()
					wins = append(wins, ev)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("round %d: %d transitions from FORWARDING won", round, len(wins))
		}
	}
	checkLog(t, s)
}

func TestApplyBatchIndependentResults(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	a, pa := holdIn(t, s, StateCreated)
	b, pb := holdIn(t, s, StateSettled)
	c, pc := holdIn(t, s, StateHeld)
	res, err := s.ApplyBatch(ctx, []Transition{
		step(a.ID, pa, StateCreated, StateHeld, ReasonNone),
		step(b.ID, pb, StateSettled, StateCanceled, ReasonNone), // illegal
		step(c.ID, pc, StateCreated, StateHeld, ReasonNone),     // stale
		step(c.ID, pc, StateHeld, StateReleased, ReasonNone),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[3].Err != nil {
		t.Fatalf("legal transitions failed: %v, %v", res[0].Err, res[3].Err)
	}
	if !errors.Is(res[1].Err, ErrIllegalTransition) || !errors.Is(res[2].Err, ErrStaleTransition) {
		t.Fatalf("errors: %v, %v", res[1].Err, res[2].Err)
	}
	if res[3].Event.Seq != res[0].Event.Seq+1 {
		t.Fatalf("seqs %d and %d: failures left a gap", res[0].Event.Seq, res[3].Event.Seq)
	}
	if mustGet(t, s, a.ID).State != StateHeld || mustGet(t, s, c.ID).State != StateReleased {
		t.Fatal("batch did not apply")
	}
	checkLog(t, s)
}

// Concurrent writers share commits (group commit) and every one of them is
// answered with its own event, in one gap-free sequence.
func TestConcurrentWritesShareCommits(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	const writers, each = 16, 25
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each*5)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				h, p := created(t, s)
				ev, err := s.Apply(ctx, step(h.ID, p, StateCreated, StateHeld, ReasonNone))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- ev.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Fatalf("seq %d handed out twice", seq)
		}
		seen[seq] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d events answered, want %d", len(seen), writers*each)
	}
	checkLog(t, s)
}

func TestMarkResolved(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	live, _ := holdIn(t, s, StateHeld)
	done, _ := holdIn(t, s, StateCanceled)
	if err := s.MarkResolved(ctx, live.ID); !errors.Is(err, ErrStaleTransition) {
		t.Fatalf("resolving a HELD hold: err = %v", err)
	}
	if err := s.MarkResolved(ctx, NewID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolving an unknown hold: err = %v", err)
	}
	un, _ := s.Unresolved(ctx)
	if len(un) != 2 {
		t.Fatalf("%d unresolved, want 2 (HELD and unconfirmed CANCELED)", len(un))
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := s.MarkResolved(ctx, done.ID); err != nil {
			t.Fatal(err)
		}
	}
	un, _ = s.Unresolved(ctx)
	if len(un) != 1 || un[0].ID != live.ID {
		t.Fatalf("unresolved after resolve: %d holds", len(un))
	}
}

func TestSetHoldInvoice(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h := testHold(randomPreimage(t))
	h.HoldInvoice = ""
	if _, err := s.Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHoldInvoice(ctx, h.ID, "lnbcrt1hold"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetHoldInvoice(ctx, h.ID, "lnbcrt1hold"); err != nil {
		t.Fatalf("setting the same invoice again: %v", err)
	}
	if err := s.SetHoldInvoice(ctx, h.ID, "lnbcrt1other"); !errors.Is(err, ErrStaleTransition) {
		t.Fatalf("replacing the invoice: err = %v", err)
	}
	if got := mustGet(t, s, h.ID).HoldInvoice; got != "lnbcrt1hold" {
		t.Fatalf("hold invoice %q", got)
	}
}

func TestEventsResumeAndNotify(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h, p := created(t, s)
	evs, _ := s.Events(ctx, 0, 0)
	if len(evs) != 1 || evs[0].To != StateCreated {
		t.Fatalf("events: %+v", evs)
	}
	changed := s.Changed()
	select {
	case <-changed:
		t.Fatal("Changed fired before anything new was committed")
	default:
	}
	if _, err := s.Apply(ctx, step(h.ID, p, StateCreated, StateHeld, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed did not fire after a commit")
	}
	rest, _ := s.Events(ctx, evs[0].Seq, 0)
	if len(rest) != 1 || rest[0].To != StateHeld || rest[0].Seq != evs[0].Seq+1 {
		t.Fatalf("resumed events: %+v", rest)
	}
	last, _ := s.LastSeq(ctx)
	if last != rest[0].Seq {
		t.Fatalf("LastSeq %d, want %d", last, rest[0].Seq)
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h := testHold(randomPreimage(t))
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Create(h); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Get(ctx, h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed write left its hold behind: %v", err)
	}
	if last, _ := s.LastSeq(ctx); last != 0 {
		t.Fatalf("a failed write left event %d behind", last)
	}
}

func TestApplyPath(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()

	// The release: HELD -> RELEASED -> FORWARDING in one compare-and-set,
	// one event per step, consecutive seqs.
	h, p := holdIn(t, s, StateHeld)
	evs, err := s.ApplyPath(ctx,
		step(h.ID, p, StateHeld, StateReleased, ReasonNone),
		step(h.ID, p, StateReleased, StateForwarding, ReasonNone))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].To != StateReleased || evs[1].To != StateForwarding ||
		evs[1].Seq != evs[0].Seq+1 {
		t.Fatalf("events %+v", evs)
	}
	if got := mustGet(t, s, h.ID); got.State != StateForwarding || got.Attempts != 1 {
		t.Fatalf("hold %s, %d attempts", got.State, got.Attempts)
	}

	// Too late: the steps before the last keep the reason stored before
	// the path; the last carries its own.
	h2, p2 := holdIn(t, s, StateHeld)
	evs, err = s.ApplyPath(ctx,
		step(h2.ID, p2, StateHeld, StateReleased, ReasonNone),
		step(h2.ID, p2, StateReleased, StateCanceled, ReasonReleasedTooLate))
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Reason != ReasonNone || evs[1].Reason != ReasonReleasedTooLate || !evs[1].Final {
		t.Fatalf("events %+v", evs)
	}

	// A stored reason carries through the steps before the last.
	h3, p3 := holdIn(t, s, StateForwarding)
	s.Apply(ctx, step(h3.ID, p3, StateForwarding, StateForwarding, ReasonNoRoute))
	evs, err = s.ApplyPath(ctx,
		step(h3.ID, p3, StateForwarding, StateForwarding, ReasonNone),
		step(h3.ID, p3, StateForwarding, StateCanceled, ReasonDeadline))
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Reason != ReasonNoRoute || evs[1].Reason != ReasonNoRoute {
		t.Fatalf("reasons %s, %s; want no_route kept", evs[0].Reason, evs[1].Reason)
	}

	// Refused paths write nothing.
	h4, p4 := holdIn(t, s, StateHeld)
	before, _ := s.LastSeq(ctx)
	for name, path := range map[string][]Transition{
		"broken": {step(h4.ID, p4, StateHeld, StateReleased, ReasonNone),
			step(h4.ID, p4, StateHeld, StateCanceled, ReasonNone)},
		"reason before the last": {step(h4.ID, p4, StateHeld, StateReleased, ReasonTimeout),
			step(h4.ID, p4, StateReleased, StateForwarding, ReasonNone)},
		"two holds": {step(h4.ID, p4, StateHeld, StateReleased, ReasonNone),
			step(h3.ID, p4, StateReleased, StateForwarding, ReasonNone)},
		"empty": nil,
	} {
		if _, err := s.ApplyPath(ctx, path...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	stale := []Transition{step(h4.ID, p4, StateCreated, StateHeld, ReasonNone),
		step(h4.ID, p4, StateHeld, StateReleased, ReasonNone)}
	if _, err := s.ApplyPath(ctx, stale...); !errors.Is(err, ErrStaleTransition) {
		t.Fatalf("stale path: err = %v", err)
	}
	if after, _ := s.LastSeq(ctx); after != before || mustGet(t, s, h4.ID).State != StateHeld {
		t.Fatal("a refused path wrote something")
	}
	checkLog(t, s)
}

// A transition's UPDATE names only the columns it changes: a release must
// not name resolved, the deadlines or the expiry, or SQLite rewrites the
// indexes over them on the hot path.
func TestTransitionUpdateSetsOnlyWhatChanges(t *testing.T) {
	id := NewID()
	release, _ := transitionUpdate(Transition{ID: id, From: StateHeld,
		To: StateForwarding}, 1, nil, nil, time.Unix(0, 0), true)
	set := release[:strings.Index(release, " WHERE ")]
	for _, col := range []string{"resolved", "deadline_height", "incoming_expiry",
		"failure_reason", "preimage", "outbound_fee_msat"} {
		if strings.Contains(set, col) {
			t.Errorf("release sets %s: %s", col, set)
		}
	}
	if !strings.Contains(set, "attempts = attempts + ?") {
		t.Errorf("release does not count the attempt: %s", set)
	}

	var p lntypes.Preimage
	h := p.Hash()
	settle, args := transitionUpdate(Transition{ID: id, From: StateForwarding,
		To: StateSettled, Resolved: true, OutboundFeeMsat: 7}, 0, p[:], h[:],
		time.Unix(0, 0), false)
	for _, want := range []string{"preimage = ?", "outbound_fee_msat = ?",
		"resolved = 1", "AND payment_hash = ?"} {
		if !strings.Contains(settle, want) {
			t.Errorf("settle lacks %q: %s", want, settle)
		}
	}
	if n := strings.Count(settle, "?"); n != len(args) {
		t.Errorf("%d placeholders, %d args", n, len(args))
	}
}

// TestUpdateWithoutReasonKeepsAStoredOne: a path without a reason from HELD
// takes the UPDATE that assumes no stored reason; a hold that has one
// anyway (the store does not forbid it) still gets it in its events.
func TestUpdateWithoutReasonKeepsAStoredOne(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h, p := created(t, s)
	if _, err := s.Apply(ctx, step(h.ID, p, StateCreated, StateHeld, ReasonDeadline)); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ApplyPath(ctx, step(h.ID, p, StateHeld, StateReleased, ReasonNone),
		step(h.ID, p, StateReleased, StateForwarding, ReasonNone))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Reason != ReasonDeadline {
			t.Errorf("%s -> %s: reason %q, want %q", ev.From, ev.To, ev.Reason, ReasonDeadline)
		}
	}
	clean, q := created(t, s)
	if _, err := s.Apply(ctx, step(clean.ID, q, StateCreated, StateHeld, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Apply(ctx, step(clean.ID, q, StateHeld, StateReleased, ReasonNone))
	if err != nil || ev.Reason != ReasonNone {
		t.Fatalf("%v, %v", ev, err)
	}
	if _, err := s.Apply(ctx, step(clean.ID, q, StateHeld, StateReleased, ReasonNone)); !errors.Is(err, ErrStaleTransition) {
		t.Fatalf("stale release: %v", err)
	}
	checkLog(t, s)
}
