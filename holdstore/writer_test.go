package holdstore

import (
	"context"
	"errors"
	"testing"
)

// TestBatchIsolatesEveryWrite commits one batch of clean and other writes,
// some failing, and checks that each write's fate is its own: refusals and
// failures leave nothing behind and take nothing of their neighbours down.
// Without and with a clean write that breaks its promise (writes, then fails
// without refusing): that batch is run again with savepoints, and a caller's
// own fn still runs once.
func TestBatchIsolatesEveryWrite(t *testing.T) {
	for _, broken := range []bool{false, true} {
		name := "refusals"
		if broken {
			name = "broken-clean-write"
		}
		t.Run(name, func(t *testing.T) {
			s, _ := openTest(t)
			ctx := context.Background()
			b, p := created(t, s)
			a := testHold(randomPreimage(t))
			c := testHold(randomPreimage(t))
			d := testHold(randomPreimage(t))
			dup := testHold(p)
			boom, boom2 := errors.New("boom"), errors.New("boom2")
			calls := 0
			req := func(clean bool, fn func(*Tx) error) *writeReq {
				return &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), clean: clean}
			}
			batch := []*writeReq{
				// Another caller's write: runs once.
				req(false, func(tx *Tx) error {
					calls++
					_, err := tx.Create(a)
					return err
				}),
				req(true, func(tx *Tx) error {
					_, err := tx.Apply(step(b.ID, p, StateCreated, StateHeld, ReasonNone))
					return err
				}),
				req(true, func(tx *Tx) error {
					_, err := tx.Apply(step(NewID(), p, StateCreated, StateHeld, ReasonNone))
					return err
				}),
				req(true, func(tx *Tx) error {
					if _, err := tx.Create(c); err != nil || !broken {
						return err
					}
					return boom
				}),
				req(false, func(tx *Tx) error {
					if _, err := tx.Create(d); err != nil {
						return err
					}
					return boom2
				}),
				req(true, func(tx *Tx) error {
					_, err := tx.Create(dup)
					return err
				}),
			}
			s.commit(batch)
			wantErr := []error{nil, nil, ErrNotFound, nil, boom2, ErrDuplicate}
			if broken {
				wantErr[3] = boom
			}
			for i, r := range batch {
				if err := <-r.done; !errors.Is(err, wantErr[i]) || (wantErr[i] == nil) != (err == nil) {
					t.Errorf("write %d: err = %v, want %v", i, err, wantErr[i])
				}
			}
			if calls != 1 {
				t.Errorf("a caller's fn ran %d times", calls)
			}
			for _, h := range []*Hold{a, c, d} {
				_, err := s.Get(ctx, h.ID)
				if want := h == a || h == c && !broken; (err == nil) != want {
					t.Errorf("hold %s: stored %v, want %v (%v)", h.ID, err == nil, want, err)
				}
			}
			if got, err := s.Get(ctx, b.ID); err != nil || got.State != StateHeld {
				t.Errorf("hold b: %v, %v", got, err)
			}
			checkLog(t, s)
		})
	}
}
