package senderlsp

import (
	"context"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics of the sender role, for Prometheus.
type Metrics struct {
	settleLatency prometheus.Histogram
	heldTime      prometheus.Histogram
	cancels       *prometheus.CounterVec
	attempts      prometheus.Counter
	outcomes      *prometheus.CounterVec
	releases      *prometheus.CounterVec
	holdsHeld     prometheus.Counter
	losses        prometheus.Counter
	refused       *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	committed     prometheus.Gauge
	untrackedN    prometheus.Gauge
	recovery      prometheus.Gauge
	runners       prometheus.Gauge
	announces     *prometheus.CounterVec
	blockHeight   prometheus.Gauge
	lingering     prometheus.Gauge
}

// Release verdicts, a label of the releases counter.
const (
	releaseAccepted = "accepted"
	releaseStale    = "stale"
	releaseRejected = "rejected"
)

// NewMetrics creates the sender metrics and registers them, with a gauge of
// holds by state read from store at each scrape, on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer, store *holdstore.Store) *Metrics {
	m := &Metrics{
		settleLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "release_to_settle_seconds",
			Help:    "From a valid release to the hold settled.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		heldTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "time_held_seconds",
			Help:    "From the sender's HTLC held to the hold resolved.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}),
		cancels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "cancels_total",
			Help: "Holds canceled, by reason.",
		}, []string{"reason"}),
		attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "outbound_attempts_total",
			Help: "Outbound payment attempts sent.",
		}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "outbound_results_total",
			Help: "Outbound payment attempts ended, by result and failure reason.",
		}, []string{"result", "reason"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "releases_total",
			Help: "Releases received, by verdict (accepted, stale, rejected).",
		}, []string{"verdict"}),
		holdsHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "holds_held_total",
			Help: "Holds whose HTLC lnd accepted.",
		}),
		losses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "losses_total",
			Help: "Receivers paid whose hold invoice could not be settled. Must stay 0.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "creates_refused_total",
			Help: "Payment creates refused, by reason: the API's error code " +
				"(receiver_lsp_unreachable, no_invoice, insufficient_liquidity, ...).",
		}, []string{"reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "release_refusals_total",
			Help: "Refused releases, by what became of the refusal: told (to " +
				"the hold's receiver LSP), or why nobody was told " +
				"(not_receiver_lsp, not_held, bad_envelope, repeated).",
		}, []string{"fate"}),
		committed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "overcommit_ratio",
			Help: "At the last create's capacity check: the amounts of the holds " +
				"not yet final over the outbound liquidity they count against. " +
				"Creates are refused once it would pass sender.capacity-overcommit.",
		}),
		untrackedN: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "holds_untracked",
			Help: "Holds recovered HELD at start that lnd has not yet " +
				"confirmed it still holds; 0 once every hold is tracked again.",
		}),
		recovery: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "recovery_seconds",
			Help: "From the start of the sender role to every hold tracked again.",
		}),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "announcements_total",
			Help: "held_htlc_available sent to receiver LSPs, by result: " +
				"stored (acknowledged, never sent again) or failed (retried).",
		}, []string{"result"}),
		runners: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "runners",
			Help: "Holds with a goroutine of their own (not parked): created, " +
				"released, forwarding, or being acted on.",
		}),
		blockHeight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "block_height",
			Help: "The best block height lnd has told the sender role of.",
		}),
		lingering: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "sender", Name: "lingering_htlcs",
			Help: "Incoming HTLCs of payments that ended (lnd confirmed the " +
				"cancel or settle) that lnd still has on a channel: unless lnd " +
				"removes them, the channel is force-closed at their expiry.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.settleLatency, m.heldTime, m.cancels, m.attempts,
			m.outcomes, m.releases, m.holdsHeld, m.losses, m.refused, m.refusals,
			m.committed, m.untrackedN, m.recovery, m.runners, m.announces,
			m.blockHeight, m.lingering, newStateCollector(store))
	}
	return m
}

func (m *Metrics) releaseToSettle(d time.Duration) { m.settleLatency.Observe(d.Seconds()) }
func (m *Metrics) timeHeld(d time.Duration)        { m.heldTime.Observe(d.Seconds()) }
func (m *Metrics) canceled(r holdstore.Reason)     { m.cancels.WithLabelValues(string(r)).Inc() }
func (m *Metrics) attempt()                        { m.attempts.Inc() }
func (m *Metrics) release(verdict string)          { m.releases.WithLabelValues(verdict).Inc() }
func (m *Metrics) held()                           { m.holdsHeld.Inc() }
func (m *Metrics) loss()                           { m.losses.Inc() }
func (m *Metrics) createRefused(reason string)     { m.refused.WithLabelValues(reason).Inc() }
func (m *Metrics) refusal(fate string)             { m.refusals.WithLabelValues(fate).Inc() }
func (m *Metrics) overcommit(ratio float64)        { m.committed.Set(ratio) }
func (m *Metrics) untracked(n int)                 { m.untrackedN.Set(float64(n)) }
func (m *Metrics) recovered(d time.Duration)       { m.recovery.Set(d.Seconds()) }
func (m *Metrics) runnersRunning(delta int)        { m.runners.Add(float64(delta)) }
func (m *Metrics) announced(result string)         { m.announces.WithLabelValues(result).Inc() }
func (m *Metrics) chainHeight(h uint32)            { m.blockHeight.Set(float64(h)) }
func (m *Metrics) lingeringHTLCs(n int)            { m.lingering.Set(float64(n)) }

func (m *Metrics) outcome(result string, r holdstore.Reason) {
	m.outcomes.WithLabelValues(result, string(r)).Inc()
}

// stateCollector reads from the store at scrape time: holds by state, the
// amount not yet final, and the nearest deadline.
type stateCollector struct {
	store                   *holdstore.Store
	desc, pending, deadline *prometheus.Desc
}

func newStateCollector(store *holdstore.Store) *stateCollector {
	return &stateCollector{store: store,
		desc: prometheus.NewDesc("asynclsp_sender_holds", "Holds by state.",
			[]string{"state"}, nil),
		pending: prometheus.NewDesc("asynclsp_sender_pending_amount_msat",
			"The amounts of the holds not yet final: what the LSP may still "+
				"have to forward.", nil, nil),
		deadline: prometheus.NewDesc("asynclsp_sender_nearest_deadline_height",
			"The lowest deadline height of the holds not yet final; absent "+
				"when none has one. Minus asynclsp_sender_block_height: the "+
				"blocks left to the nearest deadline.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.pending
	ch <- c.deadline
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.CountByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
	} else {
		for _, st := range holdstore.States {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue,
				float64(counts[st]), string(st))
		}
	}
	if p, err := c.store.PendingTotals(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.pending, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue,
			float64(p.AmountMsat))
	}
	if h, ok, err := c.store.NearestDeadline(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.deadline, err)
	} else if ok {
		ch <- prometheus.MustNewConstMetric(c.deadline, prometheus.GaugeValue, float64(h))
	}
}
