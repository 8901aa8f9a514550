package lnd

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the calls a Client has in flight to lnd: each attempt of
// a unary call and each opening of a stream (SubscribeSingleInvoice and
// the lookup that follows it, TrackPaymentV2, ...), from the request sent
// to lnd's answer. Waits between retries are not calls. One Metrics may be
// shared by several clients; it costs two atomics per call.
type Metrics struct {
	inFlight atomic.Int64
	peak     atomic.Int64
}

// NewMetrics creates the client metrics and registers them with reg,
// unless reg is nil:
//
//	asynclsp_lnd_in_flight      calls to lnd in flight now
//	asynclsp_lnd_in_flight_max  the most in flight at once since start
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{}
	if reg == nil {
		return m, nil
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "lnd", Name: "in_flight",
			Help: "Calls to lnd in flight: unary call attempts and stream opens.",
		}, func() float64 { return float64(m.inFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "asynclsp", Subsystem: "lnd", Name: "in_flight_max",
			Help: "The most calls to lnd in flight at once since start.",
		}, func() float64 { return float64(m.peak.Load()) }),
	}
	for _, c := range gauges {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("lnd: register metrics: %w", err)
		}
	}

	return m, nil
}

// InFlight returns the calls in flight now and the most at once since
// start.
func (m *Metrics) InFlight() (now, peak int64) {
	return m.inFlight.Load(), m.peak.Load()
}

// begin counts a call going to lnd; the caller calls end when it returns.
func (m *Metrics) begin() {
	n := m.inFlight.Add(1)
	for {
		p := m.peak.Load()
		if n <= p || m.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// end counts a call that returned.
func (m *Metrics) end() {
	m.inFlight.Add(-1)
}
