package holdstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lightningnetwork/lnd/lntypes"
	"pgregory.net/rapid"
)

// model is what the property test believes about each hold.
type model struct {
	state    State
	reason   Reason // the most specific reason given so far
	preimage lntypes.Preimage
}

// TestPropertyInvariants drives a store with random interleavings of
// transitions, legal and illegal, right and stale, alone, in batches and
// racing each other, with random failure reasons, and checks after every
// step: each hold is where the model says, its reason is the most specific it
// was given, and the log has one gap-free sequence with exactly one final
// event per final hold, and the running totals equal a recount.
func TestPropertyInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, err := Open(context.Background(), Config{
			Path: filepath.Join(t.TempDir(), "prop.db"),
		})
		if err != nil {
			rt.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		holds := map[ID]*model{}
		var ids []ID

		genState := rapid.SampledFrom(States)
		genReason := rapid.SampledFrom(append([]Reason{ReasonNone}, Reasons...))
		genTransition := func(rt *rapid.T) (Transition, *model) {
			id := rapid.SampledFrom(ids).Draw(rt, "hold")
			m := holds[id]
			from := m.state
			if rapid.IntRange(0, 9).Draw(rt, "stale") == 0 {
				from = genState.Draw(rt, "from")
			}
			var to State
			if next := transitions[m.state]; len(next) > 0 &&
				rapid.IntRange(0, 3).Draw(rt, "legal") > 0 {
				to = rapid.SampledFrom(next).Draw(rt, "to")
			} else {
				to = genState.Draw(rt, "to")
			}
			reason := genReason.Draw(rt, "reason")
			if to == StateCanceled && reason == ReasonNone {
				reason = ReasonInternal
			}
			return step(id, m.preimage, from, to, reason), m
		}
		// expect applies the model's view of a transition's outcome.
		expect := func(rt *rapid.T, tr Transition, m *model, ev Event, err error) {
			ok := m.state == tr.From && Legal(tr.From, tr.To)
			if ok != (err == nil) {
				rt.Fatalf("%s -> %s on a %s hold: err = %v", tr.From,
					tr.To, m.state, err)
			}
			if !ok {
				return
			}
			m.state = tr.To
			m.reason = MoreSpecific(m.reason, tr.Reason)
			if ev.Reason != m.reason {
				rt.Fatalf("event reason %q, want %q", ev.Reason, m.reason)
			}
		}

		rt.Repeat(map[string]func(*rapid.T){
			"create": func(rt *rapid.T) {
				h, p := created(t, s)
				holds[h.ID] = &model{state: StateCreated, preimage: p}
				ids = append(ids, h.ID)
			},
			"apply": func(rt *rapid.T) {
				if len(ids) == 0 {
					rt.Skip("no holds yet")
				}
				tr, m := genTransition(rt)
				ev, err := s.Apply(ctx, tr)
				expect(rt, tr, m, ev, err)
			},
			"batch": func(rt *rapid.T) {
				if len(ids) == 0 {
					rt.Skip("no holds yet")
				}
				// One transition per hold, so the model can
				// predict each outcome independently.
				n := rapid.IntRange(1, 8).Draw(rt, "n")
				picked := map[ID]bool{}
				var (
					trs    []Transition
					models []*model
				)
				for i := 0; i < n; i++ {
					tr, m := genTransition(rt)
					if picked[tr.ID] {
						continue
					}
					picked[tr.ID] = true
					trs, models = append(trs, tr), append(models, m)
				}
				res, err := s.ApplyBatch(ctx, trs)
				if err != nil {
					rt.Fatal(err)
				}
				for i, r := range res {
					expect(rt, trs[i], models[i], r.Event, r.Err)
				}
			},
			"race": func(rt *rapid.T) {
				if len(ids) == 0 {
					rt.Skip("no holds yet")
				}
				id := rapid.SampledFrom(ids).Draw(rt, "hold")
				m := holds[id]
				var exits []State
				for _, to := range transitions[m.state] {
					if to != m.state {
						exits = append(exits, to)
					}
				}
				if len(exits) == 0 {
					rt.Skip("final hold")
				}
				// Several writers try to move the hold out of its
				// state at once: exactly one wins.
				k := rapid.IntRange(2, 5).Draw(rt, "writers")
				trs := make([]Transition, k)
				for i := range trs {
					to := rapid.SampledFrom(exits).Draw(rt, "to")
					r := genReason.Draw(rt, "reason")
					if to == StateCanceled && r == ReasonNone {
						r = ReasonDeadline
					}
					trs[i] = step(id, m.preimage, m.state, to, r)
				}
				evs := make([]Event, k)
				errs := make([]error, k)
				var wg sync.WaitGroup
				for i := range trs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						evs[i], errs[i] = s.Apply(ctx, trs[i])
					}()
				}
				wg.Wait()
				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						rt.Fatalf("two racing transitions won")
					case err == nil:
						winner = i
					case !errors.Is(err, ErrStaleTransition):
						rt.Fatalf("loser failed with %v, want stale", err)
					}
				}
				if winner < 0 {
					rt.Fatal("no racing transition won")
				}
				expect(rt, trs[winner], m, evs[winner], nil)
			},
			"": func(rt *rapid.T) {
				for id, m := range holds {
					h := mustGet(t, s, id)
					if h.State != m.state || h.Reason != m.reason {
						rt.Fatalf("hold %s is %s/%q, model says %s/%q",
							id, h.State, h.Reason, m.state, m.reason)
					}
				}
				checkLog(rt, s)
				checkTotals(rt, s)
			},
		})
	})
}
