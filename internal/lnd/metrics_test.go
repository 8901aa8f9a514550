package lnd

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestInFlightCountsConcurrentCalls runs k calls that block in "lnd" at
// once: the peak is k while they run and stays k after; now is back to 0.
func TestInFlightCountsConcurrentCalls(t *testing.T) {
	const k = 17
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c := testClient(time.Minute)
	c.cfg.Metrics = m

	started := make(chan struct{}, k)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.do(context.Background(), "Op",
				func(context.Context) error {
					started <- struct{}{}
					<-release
					return nil
				})
			if err != nil {
				t.Errorf("do: %v", err)
			}
		}()
	}
	for range k {
		<-started
	}
	if now, peak := m.InFlight(); now != k || peak != k {
		t.Fatalf("with %d calls blocked: in flight %d, max %d", k, now,
			peak)
	}
	close(release)
	wg.Wait()

	// A call after the burst does not move the peak.
	if err := c.do(context.Background(), "Op",
		func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"asynclsp_lnd_in_flight":     0,
		"asynclsp_lnd_in_flight_max": k,
	}
	got := gather(t, reg)
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (exported %v), want %v", name, g, ok, v)
		}
	}
}

// TestInFlightCountsStreamReopens: a stream's reconnect attempt is a call
// in flight while it runs, the backoff before it is not.
func TestInFlightCountsStreamReopens(t *testing.T) {
	c := testClient(time.Minute)
	m := c.cfg.Metrics
	var during []int64
	failures := 0
	err := c.reconnect(context.Background(), "Op",
		func(context.Context) error {
			now, _ := m.InFlight()
			during = append(during, now)
			if len(during) < 2 {
				return io.EOF
			}

			return nil
		}, &failures)
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 2 || during[0] != 1 || during[1] != 1 {
		t.Fatalf("in flight during the opens: %v, want [1 1]", during)
	}
	if now, peak := m.InFlight(); now != 0 || peak != 1 {
		t.Fatalf("after: in flight %d, max %d; want 0, 1", now, peak)
	}
}

// gather returns the value of every unlabeled gauge in reg.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if g := m.GetGauge(); g != nil && len(m.GetLabel()) == 0 {
				out[f.GetName()] = g.GetValue()
			}
		}
	}

	return out
}
