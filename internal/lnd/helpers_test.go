package lnd_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lntypes"
)

// The adapter is the Signer package onionmsg consumes.
var _ interface {
	SignTagged(ctx context.Context, tag, msg []byte) ([64]byte, error)
} = (*lnd.Client)(nil)

// testContext is a test's context: canceled when the test ends.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)

	return ctx
}

// next returns the subscription's next update, failing after stepTimeout.
func next[T any](t *testing.T, sub *lnd.Subscription[T]) T {
	t.Helper()
	timer := time.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case v, ok := <-sub.Updates():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}

		return v
	case <-timer.C:
		t.Fatalf("no update within %v", stepTimeout)
	}
	panic("unreachable")
}

// waitInvoice reads updates until the invoice reaches state.
func waitInvoice(t *testing.T, sub *lnd.Subscription[lnd.Invoice],
	state lnd.InvoiceState) lnd.Invoice {

	t.Helper()
	for {
		inv := next(t, sub)
		if inv.State == state {
			return inv
		}
		if inv.State.IsFinal() {
			t.Fatalf("invoice %v, want %v", inv.State, state)
		}
	}
}

// waitPayment reads updates until one satisfies cond; a final update that
// does not fails the test.
func waitPayment(t *testing.T, sub *lnd.Subscription[lnd.Payment],
	cond func(lnd.Payment) bool) lnd.Payment {

	t.Helper()
	for {
		p := next(t, sub)
		if cond(p) {
			return p
		}
		if p.Status.IsFinal() {
			t.Fatalf("payment ended %v (%v)", p.Status,
				p.FailureReason)
		}
	}
}

// final reads updates until the payment ends and checks the subscription
// ended cleanly.
func final(t *testing.T, sub *lnd.Subscription[lnd.Payment]) lnd.Payment {
	t.Helper()
	for {
		p := next(t, sub)
		if p.Status.IsFinal() {
			assertEnded(t, sub)
			return p
		}
	}
}

// assertEnded checks that a subscription ended after its final update
// without an error.
func assertEnded[T any](t *testing.T, sub *lnd.Subscription[T]) {
	t.Helper()
	select {
	case _, ok := <-sub.Updates():
		if ok {
			t.Fatal("update after the final one")
		}
	case <-time.After(stepTimeout):
		t.Fatal("subscription did not end after its final update")
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("subscription ended with %v", err)
	}
}

// cancelAtEnd cancels the hold invoice when the test ends, so a failed test
// leaves no HTLC held for the next one. A settled invoice stays settled.
func cancelAtEnd(t *testing.T, net *regtest.Network, hash lntypes.Hash) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(),
			stepTimeout)
		defer cancel()
		err := net.Bob.Client.CancelInvoice(ctx, hash)
		if err != nil && !errors.Is(err, lnd.ErrInvoiceSettled) {
			t.Errorf("cleanup: cancel hold invoice: %v", err)
		}
	})
}

func randomPreimage(t *testing.T) lntypes.Preimage {
	t.Helper()
	var p lntypes.Preimage
	if _, err := rand.Read(p[:]); err != nil {
		t.Fatal(err)
	}

	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
