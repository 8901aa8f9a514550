package demo

import (
	"context"
	"time"

	"github.com/asynclsp/asynclsp/scenarios"
	"github.com/lightningnetwork/lnd/lnwire"
)

// ratioGoal is issue 8's goal for release-to-settle over a direct payment.
const ratioGoal = 1.5

// measure times pairs async and direct payments and prints the medians and
// their ratio. The ratio is reported against its goal, not checked: it
// measures the machine as much as asynclsp.
func measure(ctx context.Context, t *teller, c *scenarios.Cast, pairs int,
	amount lnwire.MilliSatoshi) error {

	t.heading("The measurement: release to settled, against a direct payment")
	t.say("%d async and %d direct payments of %s from alice to dave, "+
		"alternating, dave online", pairs, pairs, sat(int64(amount)))
	t.detail("async: from dave's wallet posting its signed release to " +
		"alice's lnd reporting SUCCEEDED")
	t.detail("direct: from alice's lnd starting to pay dave's invoice " +
		"(alice -> bob -> carol -> dave) to SUCCEEDED")
	m, err := c.Measure(ctx, pairs, amount, func(i int, a, d time.Duration) {
		t.detail("pair %2d: async %s, direct %s", i+1, millis(a), millis(d))
	})
	if err != nil {
		return err
	}

	async, direct := scenarios.Median(m.Async), scenarios.Median(m.Direct)
	verdict := "met"
	if m.Ratio() > ratioGoal {
		verdict = "NOT met"
	}
	t.say("median over %d each: async %s (min %s, max %s), direct %s (min "+
		"%s, max %s)", pairs, millis(async), millis(minOf(m.Async)),
		millis(maxOf(m.Async)), millis(direct), millis(minOf(m.Direct)),
		millis(maxOf(m.Direct)))
	t.say("ratio async/direct: %.2fx (goal at most %.1fx: %s)", m.Ratio(),
		ratioGoal, verdict)

	return nil
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}

	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds[1:] {
		m = max(m, d)
	}

	return m
}
