package lsps0

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what a Server does. Give it to NewServer with WithMetrics.
type Metrics struct {
	requests  *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	recvErrs  prometheus.Counter
	peers     prometheus.Gauge
	methodsMu sync.RWMutex
	methods   map[string]bool // registered methods: their own label
}

// Why a message or a response was dropped: the reason label of
// asynclsp_lsps0_dropped_total.
const (
	DropRate         = "rate"          // the peer was over its rate
	DropQueueFull    = "queue_full"    // the peer's queue was full
	DropPeersFull    = "peers_full"    // Limits.MaxPeers other peers were being served
	DropStopping     = "stopping"      // queued when Run stopped
	DropNotConnected = "not_connected" // response not sent: the peer had gone
	DropSendFailed   = "send_failed"   // response not sent: another error
)

// NewMetrics creates the LSPS0 metrics and registers them with reg, unless
// reg is nil:
//
//	asynclsp_lsps0_requests_total{method, code}  requests answered, by method
//	    (a registered method's name, else "unknown") and code ("ok" for a
//	    result, else the JSON-RPC error code)
//	asynclsp_lsps0_dropped_total{reason}  messages and responses dropped
//	asynclsp_lsps0_receive_errors_total  transport errors Run backed off on
//	asynclsp_lsps0_active_peers  peers with a worker in Run
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "lsps0", Name: "requests_total",
			Help: "LSPS0 requests answered, by method (registered ones; others \"unknown\") " +
				"and code (\"ok\", or the JSON-RPC error code).",
		}, []string{"method", "code"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "lsps0", Name: "dropped_total",
			Help: "LSPS0 messages not answered and responses not sent, by reason " +
				"(rate, queue_full, peers_full, stopping, not_connected, send_failed).",
		}, []string{"reason"}),
		recvErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "asynclsp", Subsystem: "lsps0", Name: "receive_errors_total",
			Help: "Errors receiving LSPS0 messages from the transport (Run backs off and receives again).",
		}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "lsps0", Name: "active_peers",
			Help: "Peers whose LSPS0 messages are being handled or queued.",
		}),
		methods: map[string]bool{methodListProtocols: true},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.dropped, m.recvErrs, m.peers} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("lsps0: register metrics: %w", err)
		}
	}
	return m, nil
}

// registered makes method a label value of its own.
func (m *Metrics) registered(method string) {
	m.methodsMu.Lock()
	defer m.methodsMu.Unlock()
	m.methods[method] = true
}

// methodLabel bounds the method label to registered methods: a peer could
// otherwise invent method names without end.
func (m *Metrics) methodLabel(method string) string {
	m.methodsMu.RLock()
	defer m.methodsMu.RUnlock()
	if m.methods[method] {
		return method
	}
	return "unknown"
}

func (m *Metrics) request(method string, code int) {
	c := "ok"
	if code != 0 {
		c = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(m.methodLabel(method), c).Inc()
}

func (m *Metrics) drop(reason string) {
	m.dropped.WithLabelValues(reason).Inc()
}
