package senderlsp

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynclsp/asynclsp/holdstore"
)

// Payment returns a payment (a hold) by id.
func (m *Manager) Payment(ctx context.Context, id holdstore.ID) (*holdstore.Hold, error) {
	h, err := m.store.Get(ctx, id)
	if errors.Is(err, holdstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return h, err
}

// Payments lists payments matching f, newest first, a page at a time.
func (m *Manager) Payments(ctx context.Context, f holdstore.Filter) (*holdstore.Page, error) {
	return m.store.List(ctx, f)
}

// Cancel cancels a payment that has not been paid out: the sender's funds
// come back at once. It refuses while the outbound payment may still succeed
// (invariant 2) and once the payment is settled; canceling a canceled
// payment succeeds and changes nothing.
func (m *Manager) Cancel(ctx context.Context, id holdstore.ID, reason holdstore.Reason) error {
	if reason != holdstore.ReasonCanceledBySender && reason != holdstore.ReasonCanceledByOperator {
		return fmt.Errorf("%w: cancel reason %q", ErrInvalidRequest, reason)
	}
	done := make(chan error, 1)
	err := m.request(ctx, id, cancelEvent{reason: reason, done: done}, done)
	if !errors.Is(err, errRunnerStopped) {
		return err
	}
	// Not tracked (resolved, or unknown): answer from the store.
	h, err := m.Payment(ctx, id)
	if err != nil {
		return err
	}
	switch h.State {
	case holdstore.StateCanceled:
		return nil
	case holdstore.StateSettled:
		return fmt.Errorf("%w: payment is settled", ErrNotCancelable)
	}
	return fmt.Errorf("%w: payment %s is %s but not running", ErrStopped, id, h.State)
}
