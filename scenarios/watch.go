package scenarios

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
)

// PaymentWatch follows one lnd payment to its end from a goroutine of its
// own, noting when the final update came.
type PaymentWatch struct {
	// Started is when the payment was sent.
	Started time.Time

	sub  *lnd.Subscription[lnd.Payment]
	done chan struct{}

	mu      sync.Mutex
	last    lnd.Payment
	endedAt time.Time
	err     error
}

// WatchPayment reads sub until it ends. Close stops it early.
func WatchPayment(sub *lnd.Subscription[lnd.Payment],
	started time.Time) *PaymentWatch {

	w := &PaymentWatch{Started: started, sub: sub, done: make(chan struct{})}

	// Ends when the subscription does: a final update, or Close.
	go func() {
		defer close(w.done)
		for p := range sub.Updates() {
			w.mu.Lock()
			w.last = p
			if p.Status.IsFinal() {
				w.endedAt = time.Now()
			}
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.err = sub.Err()
		w.mu.Unlock()
	}()

	return w
}

// Last returns the latest update.
func (w *PaymentWatch) Last() lnd.Payment {
	w.mu.Lock()
	defer w.mu.Unlock()

	return w.last
}

// Wait waits for the payment's final update and returns it with the time
// it came.
func (w *PaymentWatch) Wait(ctx context.Context) (lnd.Payment, time.Time,
	error) {

	select {
	case <-w.done:
	case <-ctx.Done():
		return w.Last(), time.Time{}, fmt.Errorf("waiting for the "+
			"payment to end (last %s): %w", w.Last().Status, ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.Status.IsFinal() {
		return w.last, time.Time{}, fmt.Errorf("payment subscription "+
			"ended at %s: %w", w.last.Status, w.err)
	}

	return w.last, w.endedAt, nil
}

// Close stops following the payment (lnd goes on with it) and waits for
// the goroutine.
func (w *PaymentWatch) Close() {
	w.sub.Close()
	<-w.done
}
