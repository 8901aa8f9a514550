package bus

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the bus does. One Metrics may be shared by several
// connections.
type Metrics struct {
	consumed   *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	retried    *prometheus.CounterVec
	served     *prometheus.CounterVec
	reconnects prometheus.Counter
	connected  prometheus.Gauge

	// peers are the peers with a label of their own; later ones are
	// counted as "other".
	mu    sync.Mutex
	peers map[NodeKey]string
}

// maxPeerLabels bounds the peer label: the first this many peers seen get
// their own, the others share "other". Anyone allowed to publish could
// otherwise grow the label set without end.
const maxPeerLabels = 256

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
			Help: "Durable messages and requests dropped for good, by kind, reason and sending peer.",
		}, []string{"kind", "reason", "peer"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "bus", Name: "retried_total",
			Help: "Durable messages handed back for redelivery, by kind, reason " +
				"(handler, later, queue_full, rate, peers_full, stopping) and sending peer.",
		}, []string{"kind", "reason", "peer"}),
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
		peers: map[NodeKey]string{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.consumed, m.dropped, m.retried, m.served, m.reconnects, m.connected} {
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

func (m *Metrics) drop(kind Kind, reason string, from NodeKey) {
	m.dropped.WithLabelValues(kindLabel(kind), reason, m.peerLabel(from)).Inc()
}

func (m *Metrics) retry(kind Kind, reason string, from NodeKey) {
	m.retried.WithLabelValues(kindLabel(kind), reason, m.peerLabel(from)).Inc()
}

// peerLabel is the peer label of from: its key for the first
// maxPeerLabels peers, "other" after them, "unknown" when the subject did
// not name a valid key.
func (m *Metrics) peerLabel(from NodeKey) string {
	if !from.valid() {
		return "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.peers[from]; ok {
		return l
	}
	if len(m.peers) >= maxPeerLabels {
		return "other"
	}
	l := from.String()
	m.peers[from] = l
	return l
}
