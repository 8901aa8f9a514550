package holdstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

// A tombstone keeps the first final word on a hold, is taken once, and is
// pruned by age; it never holds a state that is not final.
func TestTombstones(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	lsp, hold := vertex(9), NewID()
	first := &Tombstone{SenderLSP: lsp, HoldID: hold, PaymentHash: lntypes.Hash{1},
		State: MailboxCanceled, Reason: "deadline_passed"}
	second := *first
	second.State, second.Reason = MailboxSettled, ""

	err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.AddTombstone(first); err != nil {
			return err
		}
		return tx.AddTombstone(&second)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.AddTombstone(&Tombstone{SenderLSP: lsp, HoldID: NewID(),
			State: MailboxPending})
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("a pending tombstone: %v, want ErrInvalid", err)
	}

	var got *Tombstone
	err = s.Update(ctx, func(tx *Tx) (err error) {
		got, err = tx.TakeTombstone(lsp, hold)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != MailboxCanceled || got.Reason != "deadline_passed" ||
		got.PaymentHash != first.PaymentHash || !got.CreatedAt.Equal(testStart) {
		t.Fatalf("took %+v, want the first word, kept at %v", got, testStart)
	}
	err = s.Update(ctx, func(tx *Tx) (err error) {
		_, err = tx.TakeTombstone(lsp, hold)
		return err
	})
	if !errors.Is(err, ErrNoTombstone) {
		t.Fatalf("second take: %v, want ErrNoTombstone", err)
	}

	// Pruning takes what is older than the cut, and only that.
	old := NewID()
	addTomb := func(id ID) {
		t.Helper()
		err := s.Update(ctx, func(tx *Tx) error {
			return tx.AddTombstone(&Tombstone{SenderLSP: lsp, HoldID: id,
				PaymentHash: lntypes.Hash{2}, State: MailboxSettled})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	addTomb(old)
	clk.SetTime(testStart.Add(time.Hour))
	young := NewID()
	addTomb(young)
	var pruned int64
	err = s.Update(ctx, func(tx *Tx) (err error) {
		pruned, err = tx.PruneTombstones(testStart.Add(time.Minute))
		return err
	})
	if err != nil || pruned != 1 {
		t.Fatalf("pruned %d (%v), want 1", pruned, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.TakeTombstone(lsp, old); !errors.Is(err, ErrNoTombstone) {
			return errors.New("the old tombstone survived pruning")
		}
		_, err := tx.TakeTombstone(lsp, young)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
