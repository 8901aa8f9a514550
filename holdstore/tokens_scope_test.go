package holdstore

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// A wallet's view of the log: its own holds' events, in order, in pages,
// and a read position that moves past other owners' events.
func TestOwnedEvents(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	owners := []string{"wallet-a", "wallet-b", "wallet-a", "wallet-c", "wallet-a"}
	for _, owner := range owners {
		h := testHold(randomPreimage(t))
		h.Owner = owner
		if _, err := s.Create(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(ctx, held(h.ID)); err != nil {
			t.Fatal(err)
		}
	}
	// Seqs 1..10: two per hold; wallet-a's are 1, 2, 5, 6, 9, 10.
	var got []uint64
	var reads []uint64
	after := uint64(0)
	for {
		evs, read, err := s.OwnedEvents(ctx, "wallet-a", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			got = append(got, ev.Seq)
		}
		reads = append(reads, read)
		if read == after {
			break
		}
		after = read
	}
	if !slices.Equal(got, []uint64{1, 2, 5, 6, 9, 10}) || !slices.Equal(reads, []uint64{2, 6, 10, 10}) {
		t.Fatalf("events %v, reads %v", got, reads)
	}
	// wallet-c's one hold, from after its events: nothing, read at the end.
	evs, read, err := s.OwnedEvents(ctx, "wallet-c", 8, 100)
	if err != nil || len(evs) != 0 || read != 10 {
		t.Fatalf("wallet-c after 8: %v, read %d, %v", evs, read, err)
	}
	// Nobody's: nothing, read moves to the end.
	evs, read, err = s.OwnedEvents(ctx, "nobody", 0, 100)
	if err != nil || len(evs) != 0 || read != 10 {
		t.Fatalf("nobody: %v, read %d, %v", evs, read, err)
	}
	// An event of wallet-a's after the end is found from there.
	h := testHold(randomPreimage(t))
	h.Owner = "wallet-a"
	if _, err := s.Create(ctx, h); err != nil {
		t.Fatal(err)
	}
	evs, read, err = s.OwnedEvents(ctx, "wallet-a", 10, 100)
	if err != nil || len(evs) != 1 || evs[0].Seq != 11 || evs[0].HoldID != h.ID || read != 11 {
		t.Fatalf("new event: %v, read %d, %v", evs, read, err)
	}
}

// The scan walks the log by seq and looks each hold up by its key.
func TestOwnedEventsPlan(t *testing.T) {
	s, _ := openTest(t)
	rows, err := s.db.Query("EXPLAIN QUERY PLAN "+ownedEventsQuery, 1, 5, "x", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	all := strings.Join(plan, "; ")
	if len(plan) != 2 || !strings.Contains(plan[0], "SEARCH e USING INTEGER PRIMARY KEY") ||
		!strings.Contains(plan[1], "SEARCH h USING INDEX") || strings.Contains(all, "TEMP B-TREE") {
		t.Fatalf("plan: %s", all)
	}
}
