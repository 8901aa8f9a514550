package bus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the bus does. One Metrics may be shared by several
// connections.
type Metrics struct {
	consumed   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	served     *prometheus.CounterVec
	reconnects prometheus.Counter
	connected  prometheus.Gauge
}

// Results of handling one durable message or one request.
const (
	resultAcked    = "acked"    // handler succeeded, message acknowledged
	resultRetried  = "retried"  // handler failed, message naked for redelivery
	resultDropped  = "dropped"  // handler or bus dropped it for good
	resultAnswered = "answered" // request answered
	resultFailed   = "failed"   // request handler failed (answered "unavailable")
)

// NewMetrics creates the bus metrics and registers them with reg, unless
// reg is nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "messages_total",
			Help: "Durable messages handled, by kind and result (acked, retried, dropped).",
		}, []string{"kind", "result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "dropped_total",
			Help: "Durable messages and requests dropped for good, by kind and reason.",
		}, []string{"kind", "reason"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "requests_total",
			Help: "Requests served, by kind and result (answered, dropped, failed).",
		}, []string{"kind", "result"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "reconnects_total",
			Help: "Reconnections to NATS.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "connected",
			Help: "1 while connected to NATS.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.consumed, m.dropped, m.served, m.reconnects, m.connected} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("bus: register metrics: %w", err)
		}
	}
	return m, nil
}

// kindLabel bounds the kind label to the kinds asynclsp defines: anyone
// allowed to publish could otherwise invent kinds without end.
func kindLabel(k Kind) string {
	switch k {
	case KindInvoiceRequest, KindHeldHTLCAvailable, KindReleaseHeldHTLC, KindHoldOutcome:
		return string(k)
	default:
		return "other"
	}
}

func (m *Metrics) drop(kind Kind, reason string) {
	m.dropped.WithLabelValues(kindLabel(kind), reason).Inc()
}
