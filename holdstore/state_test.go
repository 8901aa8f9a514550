package holdstore

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The table of DESIGN.md, written out independently of the code's table.
var wantLegal = map[[2]State]bool{
	{StateNone, StateCreated}:          true,
	{StateCreated, StateHeld}:          true,
	{StateCreated, StateCanceled}:      true,
	{StateHeld, StateReleased}:         true,
	{StateHeld, StateCanceled}:         true,
	{StateReleased, StateForwarding}:   true,
	{StateReleased, StateCanceled}:     true,
	{StateForwarding, StateForwarding}: true,
	{StateForwarding, StateSettled}:    true,
	{StateForwarding, StateCanceled}:   true,
	{StateSettled, StateSettled}:       false,
	{StateCanceled, StateCanceled}:     false,
	{StateCreated, StateReleased}:      false,
	{StateHeld, StateSettled}:          false,
	{StateReleased, StateSettled}:      false,
	{StateForwarding, StateHeld}:       false,
	{StateCanceled, StateHeld}:         false,
	{StateSettled, StateCanceled}:      false,
	{StateCanceled, StateSettled}:      false,
	{StateCreated, StateCreated}:       false,
	{StateHeld, StateHeld}:             false,
	{StateReleased, StateReleased}:     false,
	{StateForwarding, StateReleased}:   false,
	{StateReleased, StateHeld}:         false,
	{StateHeld, StateForwarding}:       false,
	{StateCreated, StateForwarding}:    false,
	{StateCreated, StateSettled}:       false,
	{StateNone, StateHeld}:             false,
	{StateSettled, StateForwarding}:    false,
	{StateCanceled, StateForwarding}:   false,
	{StateSettled, StateHeld}:          false,
	{StateSettled, StateReleased}:      false,
	{StateSettled, StateCreated}:       false,
	{StateCanceled, StateCreated}:      false,
	{StateCanceled, StateReleased}:     false,
	{StateForwarding, StateCreated}:    false,
	{StateReleased, StateCreated}:      false,
	{StateHeld, StateCreated}:          false,
	{StateNone, StateReleased}:         false,
	{StateNone, StateForwarding}:       false,
	{StateNone, StateSettled}:          false,
	{StateNone, StateCanceled}:         false,
}

// TestTransitionTable applies every (from, to) pair of stored states to a real
// hold in state from: legal pairs move it and append one event; illegal ones
// fail with an error naming both states and change nothing.
func TestTransitionTable(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	for _, from := range States {
		for _, to := range States {
			legal, listed := wantLegal[[2]State{from, to}]
			if !listed {
				t.Fatalf("pair %s -> %s missing from the test table", from, to)
			}
			if got := Legal(from, to); got != legal {
				t.Errorf("Legal(%s, %s) = %v, want %v", from, to, got, legal)
			}
			h, p := holdIn(t, s, from)
			before, _ := s.History(ctx, h.ID)

			ev, err := s.Apply(ctx, step(h.ID, p, from, to, ReasonNone))
			after := mustGet(t, s, h.ID)
			hist, _ := s.History(ctx, h.ID)
			if legal {
				if err != nil {
					t.Errorf("%s -> %s: %v", from, to, err)
					continue
				}
				if after.State != to || ev.To != to || ev.From != from {
					t.Errorf("%s -> %s: hold is %s, event %s -> %s", from,
						to, after.State, ev.From, ev.To)
				}
				if len(hist) != len(before)+1 {
					t.Errorf("%s -> %s: %d events before, %d after", from,
						to, len(before), len(hist))
				}
				continue
			}
			if !errors.Is(err, ErrIllegalTransition) {
				t.Errorf("%s -> %s: err = %v, want ErrIllegalTransition",
					from, to, err)
				continue
			}
			if !strings.Contains(err.Error(), string(from)) ||
				!strings.Contains(err.Error(), string(to)) {
				t.Errorf("%s -> %s: error %q does not name both states",
					from, to, err)
			}
			if after.State != from || len(hist) != len(before) {
				t.Errorf("%s -> %s: illegal transition changed the hold "+
					"(%s, %d events)", from, to, after.State, len(hist))
			}
		}
	}
	// The creation edge is legal only through Create.
	for _, to := range States {
		if got, want := Legal(StateNone, to), wantLegal[[2]State{StateNone, to}]; got != want {
			t.Errorf("Legal((none), %s) = %v, want %v", to, got, want)
		}
	}
	checkLog(t, s)
}

// TestStaleTransition: a legal edge from the wrong current state is refused
// with an error naming the state the hold is really in and the one expected.
func TestStaleTransition(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	for _, actual := range States {
		for _, from := range States {
			if from == actual {
				continue
			}
			for _, to := range transitions[from] {
				h, p := holdIn(t, s, actual)
				_, err := s.Apply(ctx, step(h.ID, p, from, to, ReasonNone))
				if !errors.Is(err, ErrStaleTransition) {
					t.Fatalf("hold in %s, %s -> %s: err = %v, want stale",
						actual, from, to, err)
				}
				msg := err.Error()
				if !strings.Contains(msg, string(actual)) ||
					!strings.Contains(msg, string(from)) {
					t.Fatalf("error %q does not name %s and %s", msg,
						actual, from)
				}
				if got := mustGet(t, s, h.ID).State; got != actual {
					t.Fatalf("stale transition moved the hold to %s", got)
				}
			}
		}
	}
	checkLog(t, s)
}

func TestTransitionNeedsItsFields(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	h, p := holdIn(t, s, StateForwarding)
	wrong := randomPreimage(t)

	cases := []struct {
		name string
		tr   Transition
	}{
		{"held without expiry", Transition{ID: h.ID, From: StateCreated, To: StateHeld}},
		{"held deadline above expiry", Transition{ID: h.ID, From: StateCreated,
			To: StateHeld, IncomingExpiry: 100, DeadlineHeight: 100}},
		{"settled without preimage", Transition{ID: h.ID, From: StateForwarding,
			To: StateSettled}},
		{"canceled without reason", Transition{ID: h.ID, From: StateForwarding,
			To: StateCanceled}},
		{"unknown reason", Transition{ID: h.ID, From: StateForwarding,
			To: StateCanceled, Reason: "bored"}},
		{"resolved non-final", Transition{ID: h.ID, From: StateForwarding,
			To: StateForwarding, Resolved: true}},
		{"settled with another preimage", Transition{ID: h.ID,
			From: StateForwarding, To: StateSettled, Preimage: &wrong}},
	}
	for _, c := range cases {
		if _, err := s.Apply(ctx, c.tr); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
	got := mustGet(t, s, h.ID)
	if got.State != StateForwarding || got.Preimage != nil {
		t.Fatalf("a refused transition changed the hold: %s", got.State)
	}
	if _, err := s.Apply(ctx, step(h.ID, p, StateForwarding, StateSettled, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, h.ID); got.Preimage == nil || *got.Preimage != p {
		t.Fatal("settled hold lost its preimage")
	}
	checkLog(t, s)
}
