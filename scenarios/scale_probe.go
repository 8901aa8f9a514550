package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
)

// Go runtime metrics of bob's asynclspd (Prometheus' Go collector).
const (
	heapInuseMetric  = "go_memstats_heap_inuse_bytes"
	goroutinesMetric = "go_goroutines"
)

// Snapshot is what bob's asynclspd, carol's and the lnd nodes of alice and
// bob use at one moment of a scale run.
type Snapshot struct {
	// Held is how many payments bob held then.
	Held int

	// Bob and Carol are the asynclspd processes; AliceLnd and BobLnd the
	// lnd ones (zero where /proc could not be read).
	Bob, Carol, AliceLnd, BobLnd proc.Usage

	// HeapInuse (bytes) is bob's asynclspd's Go heap in use right after
	// a forced GC (its /debug/pprof/heap); Goroutines its go_goroutines.
	HeapInuse, Goroutines float64
}

// snapshot reads what the processes use now, with held payments held.
func (s *scaleRun) snapshot(ctx context.Context, held int) (Snapshot, error) {
	snap := Snapshot{Held: held}
	m, err := s.c.Bob.Scrape(ctx)
	if err != nil {
		return snap, err
	}
	var ok1, ok2 bool
	snap.HeapInuse, ok1 = m.Sum(heapInuseMetric)
	snap.Goroutines, ok2 = m.Sum(goroutinesMetric)
	if !ok1 || !ok2 {
		return snap, fmt.Errorf("bob's /metrics has no %s or %s",
			heapInuseMetric, goroutinesMetric)
	}

	net := s.c.Net
	for _, u := range []struct {
		name string
		pid  int
		to   *proc.Usage
	}{
		{"bob's asynclspd", s.c.Bob.PID(), &snap.Bob},
		{"carol's asynclspd", s.c.Carol.PID(), &snap.Carol},
		{"alice's lnd", net.Alice.PID(), &snap.AliceLnd},
		{"bob's lnd", net.Bob.PID(), &snap.BobLnd},
	} {
		if *u.to, err = proc.ReadUsage(u.pid); err != nil {
			s.r.note("the usage of %s is not measured: %v", u.name, err)
		}
	}

	// After the RSS: a GC does not hand memory back to the OS at once,
	// but nothing here should depend on that.
	if heap, err := s.c.Bob.HeapAfterGC(ctx); err == nil {
		snap.HeapInuse = float64(heap)
	} else {
		s.r.note("Go heap after a forced GC: %v; the heap column is %s as "+
			"of the last GC cycle", err, heapInuseMetric)
	}

	return snap, nil
}

// note records something the run could not measure, once.
func (r *ScaleReport) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	for _, have := range r.Notes {
		if have == n {
			return
		}
	}
	r.Notes = append(r.Notes, n)
}

// mib formats bytes as MiB.
func mib(b int64) string {
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// CPU is the CPU time the processes of a run used over a stretch of it.
type CPU struct {
	Bob, Carol, AliceLnd, BobLnd, CarolLnd time.Duration
}

func (c CPU) String() string {
	return fmt.Sprintf("asynclspd %s, carol's %s; lnd: alice %s, bob %s, "+
		"carol %s", dur(c.Bob), dur(c.Carol), dur(c.AliceLnd), dur(c.BobLnd),
		dur(c.CarolLnd))
}

// cpuMeter measures the CPU the processes use from its start.
type cpuMeter struct {
	s     *scaleRun
	start CPU
}

// cpuNow returns the CPU the processes have used so far; zero where /proc
// could not be read.
func (s *scaleRun) cpuNow() CPU {
	read := func(pid int) time.Duration {
		u, _ := proc.ReadUsage(pid)
		return u.CPU
	}
	net := s.c.Net

	return CPU{Bob: read(s.c.Bob.PID()), Carol: read(s.c.Carol.PID()),
		AliceLnd: read(net.Alice.PID()), BobLnd: read(net.Bob.PID()),
		CarolLnd: read(net.Carol.PID())}
}

// meterCPU starts measuring the CPU used from now.
func (s *scaleRun) meterCPU() cpuMeter {
	return cpuMeter{s: s, start: s.cpuNow()}
}

// used returns the CPU used since the meter started (the daemons must not
// have restarted meanwhile).
func (m cpuMeter) used() CPU {
	now := m.s.cpuNow()

	return CPU{Bob: now.Bob - m.start.Bob, Carol: now.Carol - m.start.Carol,
		AliceLnd: now.AliceLnd - m.start.AliceLnd,
		BobLnd:   now.BobLnd - m.start.BobLnd,
		CarolLnd: now.CarolLnd - m.start.CarolLnd}
}
