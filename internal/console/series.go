package console

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
)

// seriesLen is how many samples the console keeps: a day at the default
// interval.
const seriesLen = 1440

// point is one sample of the holds, for the charts.
type point struct {
	At         time.Time `json:"at"`
	Held       int       `json:"held"` // HELD, RELEASED or FORWARDING
	AmountMsat uint64    `json:"pending_amount_msat"`
}

// series is the ring of the latest samples.
type series struct {
	mu     sync.Mutex
	points []point
}

func (s *series) add(p point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.points) == seriesLen {
		copy(s.points, s.points[1:])
		s.points = s.points[:seriesLen-1]
	}
	s.points = append(s.points, p)
}

func (s *series) snapshot() []point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]point{}, s.points...)
}

// Run samples the holds for the charts every SampleEvery until ctx ends:
// what they show since the daemon started. It is the console's only
// goroutine; the daemon runs it with its other parts.
func (c *Console) Run(ctx context.Context) error {
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-c.cfg.Clock.TickAfter(c.cfg.SampleEvery):
		}
	}
}

func (c *Console) sample(ctx context.Context) {
	counts, err := c.cfg.Store.CountByState(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("console: sampling the holds", "err", err)
		}
		return
	}
	pending, err := c.cfg.Store.PendingTotals(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Warn("console: sampling the pending amount", "err", err)
		}
		return
	}
	c.series.add(point{At: c.cfg.Clock.Now().UTC(),
		Held: counts[holdstore.StateHeld] + counts[holdstore.StateReleased] +
			counts[holdstore.StateForwarding],
		AmountMsat: uint64(pending.AmountMsat)})
}

// getSeries: GET /console/api/series, the samples since the daemon started
// (a day at most), oldest first.
func (c *Console) getSeries(w http.ResponseWriter, _ *http.Request, _ *session) {
	httpjson.Write(w, http.StatusOK, struct {
		Every  float64 `json:"every_seconds"`
		Points []point `json:"points"`
	}{c.cfg.SampleEvery.Seconds(), c.series.snapshot()})
}
