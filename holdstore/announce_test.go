package holdstore

import (
	"context"
	"testing"
)

// Only HELD holds no receiver LSP has acknowledged are announced: paged in
// creation order, left once marked or once they leave HELD, and a mark is
// idempotent and never touches a hold that is not HELD.
func TestUnannounced(t *testing.T) {
	ctx := context.Background()
	s, clk := openTest(t)
	var held []ID
	for i := 0; i < 5; i++ {
		h, _ := holdIn(t, s, StateHeld)
		held = append(held, h.ID)
		clk.SetTime(clk.Now().Add(1))
	}
	holdIn(t, s, StateCreated)
	released, _ := holdIn(t, s, StateReleased)

	all := func() []ID {
		var ids []ID
		for cursor := ""; ; {
			p, err := s.Unannounced(ctx, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range p.Holds {
				ids = append(ids, h.ID)
			}
			if p.Next == "" {
				return ids
			}
			cursor = p.Next
		}
	}
	if got := all(); !equalIDs(got, held) {
		t.Fatalf("unannounced %v, want the HELD ones in order %v", got, held)
	}
	if err := s.MarkAnnounced(ctx, held[1], held[3], released.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAnnounced(ctx, held[1]); err != nil {
		t.Fatalf("marking again: %v", err)
	}
	if got, want := all(), []ID{held[0], held[2], held[4]}; !equalIDs(got, want) {
		t.Fatalf("after marking: %v, want %v", got, want)
	}
	var at *int64
	if err := s.db.QueryRow("SELECT announced_at FROM holds WHERE id = ?",
		released.ID[:]).Scan(&at); err != nil || at != nil {
		t.Fatalf("a RELEASED hold was marked: %v, %v", at, err)
	}
	if _, err := s.Apply(ctx, step(held[0], [32]byte{}, StateHeld, StateCanceled, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	if got, want := all(), []ID{held[2], held[4]}; !equalIDs(got, want) {
		t.Fatalf("after a cancel: %v, want %v", got, want)
	}
}

func equalIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
