package scenarios

import (
	"sync"
	"testing"
	"time"

	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// concurrentPayments is how many payments scenario 8 creates at once.
const concurrentPayments = 4

// testConcurrentPayments is scenario 8: payments to dave created at the
// same moment each get an invoice of their own (a payment hash is never
// handed out twice), and all of them settle.
func testConcurrentPayments(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 3*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	stock, err := c.Dave.Counts(ctx)
	must(t, err)

	var (
		wg      sync.WaitGroup
		created = make([]*senderclient.Payment, concurrentPayments)
		errs    = make([]error, concurrentPayments)
		start   = make(chan struct{})
	)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			created[i], errs[i] = c.Create(ctx, 10_000_000, "")
		}()
	}
	close(start)
	wg.Wait()

	hashes := map[string]bool{}
	for i, p := range created {
		must(t, errs[i])
		if hashes[p.PaymentHash] {
			t.Fatalf("payment hash %s handed out twice", p.PaymentHash)
		}
		hashes[p.PaymentHash] = true
	}
	after, err := c.Dave.Counts(ctx)
	must(t, err)
	if after.Reserved != stock.Reserved+concurrentPayments ||
		after.Available != stock.Available-concurrentPayments {

		t.Fatalf("dave's stock went from %+v to %+v", stock, after)
	}

	hs := make([]*held, len(created))
	for i, p := range created {
		hash, err := Hash(p)
		must(t, err)
		pay, err := c.AlicePays(ctx, p, 0)
		must(t, err)
		t.Cleanup(pay.Close)
		hs[i] = &held{p: p, hash: hash, pay: pay}
	}
	for _, h := range hs {
		h.p, err = c.WaitState(ctx, h.p.ID, senderclient.StateHeld)
		must(t, err)
		h.item, err = c.WaitItem(ctx, h.hash)
		must(t, err)
	}
	for _, h := range hs {
		h.release(t, c)
	}
	checkSettledOnce(t, c, before, hs...)
}
