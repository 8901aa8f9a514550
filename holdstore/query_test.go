package holdstore

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()

	byHeight, p := created(t, s) // deadline height 1100 once HELD
	s.Apply(ctx, step(byHeight.ID, p, StateCreated, StateHeld, ReasonNone))

	byTime := testHold(randomPreimage(t))
	byTime.DeadlineTime = testStart.Add(time.Hour)
	if _, err := s.Create(ctx, byTime); err != nil {
		t.Fatal(err)
	}
	finished, _ := holdIn(t, s, StateCanceled)
	finished.DeadlineTime = testStart // already final: never due

	ids := func(hs []*Hold) map[ID]bool {
		m := map[ID]bool{}
		for _, h := range hs {
			m[h.ID] = true
		}
		return m
	}
	due, err := s.Due(ctx, 1099, testStart.Add(59*time.Minute))
	if err != nil || len(due) != 0 {
		t.Fatalf("due too early: %d holds, %v", len(due), err)
	}
	due, _ = s.Due(ctx, 1100, testStart.Add(59*time.Minute))
	if got := ids(due); len(got) != 1 || !got[byHeight.ID] {
		t.Fatalf("at height 1100: %v", got)
	}
	due, _ = s.Due(ctx, 1099, testStart.Add(time.Hour))
	if got := ids(due); len(got) != 1 || !got[byTime.ID] {
		t.Fatalf("at the deadline time: %v", got)
	}
	due, _ = s.Due(ctx, 2000, testStart.Add(13*time.Hour))
	if got := ids(due); len(got) != 2 || got[finished.ID] {
		t.Fatalf("both due, the final one not: %v", got)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	var all []ID
	for i := 0; i < 25; i++ {
		clk.SetTime(testStart.Add(time.Duration(i) * time.Second))
		st := StateHeld
		if i%5 == 0 {
			st = StateCanceled
		}
		h, _ := holdIn(t, s, st)
		all = append(all, h.ID)
	}

	// Paging walks every hold exactly once, newest first.
	var walked []ID
	cursor := ""
	for pages := 0; ; pages++ {
		page, err := s.List(ctx, Filter{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range page.Holds {
			walked = append(walked, h.ID)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if len(walked) != len(all) {
		t.Fatalf("walked %d holds, want %d", len(walked), len(all))
	}
	for i, id := range walked {
		if id != all[len(all)-1-i] {
			t.Fatalf("position %d: not newest first", i)
		}
	}

	canceled, err := s.List(ctx, Filter{States: []State{StateCanceled}})
	if err != nil || len(canceled.Holds) != 5 {
		t.Fatalf("canceled: %d, %v", len(canceled.Holds), err)
	}
	recent, _ := s.List(ctx, Filter{CreatedAfter: testStart.Add(19 * time.Second)})
	if len(recent.Holds) != 5 {
		t.Fatalf("created after 19s: %d holds, want 5", len(recent.Holds))
	}
	none, _ := s.List(ctx, Filter{Owner: "nobody"})
	if len(none.Holds) != 0 {
		t.Fatalf("owner filter: %d holds", len(none.Holds))
	}
	counts, _ := s.CountByState(ctx)
	if counts[StateHeld] != 20 || counts[StateCanceled] != 5 {
		t.Fatalf("counts %v", counts)
	}
	if _, err := s.List(ctx, Filter{States: []State{"LIMBO"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown state filter: %v", err)
	}
	if _, err := s.List(ctx, Filter{Cursor: "!!"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("malformed cursor: %v", err)
	}
}

func TestPendingAmount(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if sum, err := s.PendingAmountMsat(ctx); err != nil || sum != 0 {
		t.Fatalf("empty store: %d, %v", sum, err)
	}
	holdIn(t, s, StateCreated)
	holdIn(t, s, StateForwarding)
	holdIn(t, s, StateSettled)
	holdIn(t, s, StateCanceled)
	sum, err := s.PendingAmountMsat(ctx)
	if err != nil || sum != 2*100_000_000 {
		t.Fatalf("pending %d (%v), want the two non-final holds", sum, err)
	}
}

// The nearest deadline is the lowest of the holds not yet final.
func TestNearestDeadline(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	if _, ok, err := s.NearestDeadline(ctx); ok || err != nil {
		t.Fatalf("empty store: ok %v, %v", ok, err)
	}
	holdIn(t, s, StateCreated)
	if _, ok, err := s.NearestDeadline(ctx); ok || err != nil {
		t.Fatalf("a CREATED hold has no deadline height: ok %v, %v", ok, err)
	}
	h, p := holdIn(t, s, StateHeld) // deadline 1100
	if got, ok, err := s.NearestDeadline(ctx); !ok || err != nil || got != 1100 {
		t.Fatalf("one HELD: %d %v %v", got, ok, err)
	}
	if _, err := s.Apply(ctx, step(h.ID, p, StateHeld, StateCanceled, ReasonNone)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.NearestDeadline(ctx); ok || err != nil {
		t.Fatalf("only a CANCELED: ok %v, %v", ok, err)
	}
}
