package scenarios

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Measurement compares how long an async payment takes to settle once
// released with how long the same payment takes made directly.
type Measurement struct {
	Amount lnwire.MilliSatoshi

	// Async are the times from dave's wallet posting its signed release
	// to carol until alice's lnd reports the payment SUCCEEDED.
	Async []time.Duration

	// Direct are the times from alice's lnd starting to pay an invoice
	// of dave's, over the same route (alice -> bob -> carol -> dave),
	// until it reports SUCCEEDED.
	Direct []time.Duration
}

// Median returns the median of ds (the mean of the middle two for an even
// count), 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}

	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ratio is the async median over the direct median.
func (m *Measurement) Ratio() float64 {
	d := Median(m.Direct)
	if d == 0 {
		return 0
	}

	return float64(Median(m.Async)) / float64(d)
}

// Measure makes n async and n direct payments of amount from alice to dave,
// alternating which goes first, with dave online and the network quiet
// between payments; progress, if set, hears each pair. Every payment must
// succeed.
func (c *Cast) Measure(ctx context.Context, n int, amount lnwire.MilliSatoshi,
	progress func(i int, async, direct time.Duration)) (*Measurement, error) {

	m := &Measurement{Amount: amount}
	for i := range n {
		var a, d time.Duration
		var err error
		if i%2 == 0 {
			if a, err = c.timeAsync(ctx, amount); err == nil {
				d, err = c.timeDirect(ctx, amount)
			}
		} else {
			if d, err = c.timeDirect(ctx, amount); err == nil {
				a, err = c.timeAsync(ctx, amount)
			}
		}
		if err != nil {
			return m, fmt.Errorf("measurement, pair %d: %w", i+1, err)
		}
		m.Async = append(m.Async, a)
		m.Direct = append(m.Direct, d)
		if progress != nil {
			progress(i, a, d)
		}
	}

	return m, nil
}

// timeAsync holds a payment, then times dave's release to alice's success.
func (c *Cast) timeAsync(ctx context.Context, amount lnwire.MilliSatoshi) (
	time.Duration, error) {

	p, err := c.Create(ctx, amount, "")
	if err != nil {
		return 0, err
	}
	hash, err := Hash(p)
	if err != nil {
		return 0, err
	}
	pay, err := c.AlicePays(ctx, p, 0)
	if err != nil {
		return 0, err
	}
	defer pay.Close()
	if _, err := c.WaitState(ctx, p.ID, senderclient.StateHeld); err != nil {
		return 0, err
	}
	item, err := c.WaitItem(ctx, hash)
	if err != nil {
		return 0, err
	}
	rel, err := c.Receiver.SignRelease(ctx, item)
	if err != nil {
		return 0, err
	}

	posted := time.Now()
	if _, err := c.Receiver.PostRelease(ctx, rel); err != nil {
		return 0, err
	}
	done, at, err := pay.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if done.Status != lnd.PaymentSucceeded {
		return 0, fmt.Errorf("async payment %s: %s (%s)", p.ID, done.Status,
			done.FailureReason)
	}
	if _, err := c.WaitState(ctx, p.ID, senderclient.StateSettled); err != nil {
		return 0, err
	}

	return at.Sub(posted), c.Net.WaitNoPendingHTLCs(ctx)
}

// timeDirect times alice paying an invoice of dave's.
func (c *Cast) timeDirect(ctx context.Context, amount lnwire.MilliSatoshi) (
	time.Duration, error) {

	inv, err := InvoiceMaker{c.Net.Dave.Client}.MakeInvoice(ctx, amount,
		time.Hour)
	if err != nil {
		return 0, err
	}
	started := time.Now()
	sub, err := c.Net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice:      inv,
		FeeLimitMsat: amount/100 + 10_000,
		Timeout:      time.Minute,
	})
	if err != nil {
		return 0, fmt.Errorf("direct payment: %w", err)
	}
	pay := WatchPayment(sub, started)
	defer pay.Close()
	done, at, err := pay.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if done.Status != lnd.PaymentSucceeded {
		return 0, fmt.Errorf("direct payment: %s (%s)", done.Status,
			done.FailureReason)
	}

	return at.Sub(started), c.Net.WaitNoPendingHTLCs(ctx)
}
