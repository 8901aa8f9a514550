package lsp

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Metric returns the sum of the daemon's Prometheus series called name
// whose labels include every pair in labels ("verdict", "rejected", ...).
// A series that does not exist yet counts 0, as a counter never
// incremented is not exported.
func (d *Daemon) Metric(ctx context.Context, name string,
	labels ...string) (float64, error) {

	if len(labels)%2 != 0 {
		return 0, fmt.Errorf("metric %s: labels must be pairs", name)
	}
	s, err := d.Scrape(ctx)
	if err != nil {
		return 0, err
	}
	v, _ := s.Sum(name, labels...)

	return v, nil
}

// Samples are one scrape of a daemon's metrics: each series
// ("name{labels}") and its value.
type Samples map[string]float64

// Sum returns the sum of the series called name whose labels include every
// pair in labels, and whether there was any.
func (s Samples) Sum(name string, labels ...string) (float64, bool) {
	var want []string
	for i := 0; i+1 < len(labels); i += 2 {
		want = append(want, fmt.Sprintf("%s=%q", labels[i], labels[i+1]))
	}
	var sum float64
	found := false
	for series, v := range s {
		if matches(series, name, want) {
			sum += v
			found = true
		}
	}

	return sum, found
}

// Scrape reads every series of the daemon's /metrics once.
func (d *Daemon) Scrape(ctx context.Context) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		d.OpsURL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asynclspd %s: metrics: %w", d.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("asynclspd %s: metrics: %s", d.Name,
			resp.Status)
	}

	out := Samples{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		series, value, ok := parseSample(sc.Text())
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %q: %w", series, value, err)
		}
		out[series] += v
	}

	return out, sc.Err()
}

// parseSample splits a line of the text exposition format into the series
// ("name{labels}") and its value; comments and blank lines are not samples.
func parseSample(line string) (series, value string, ok bool) {
	if line == "" || strings.HasPrefix(line, "#") {
		return "", "", false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", "", false
	}

	return line[:i], line[i+1:], true
}

// matches reports whether series is name with every label in want.
func matches(series, name string, want []string) bool {
	rest, ok := strings.CutPrefix(series, name)
	if !ok || (rest != "" && rest[0] != '{') {
		return false
	}
	for _, w := range want {
		if !strings.Contains(rest, w) {
			return false
		}
	}

	return true
}

// heapInuseLine starts the line of the heap profile's text form
// (debug=1) that gives runtime.MemStats.HeapInuse.
const heapInuseLine = "# HeapInuse = "

// HeapAfterGC returns the Go heap in use (bytes) of the daemon right after
// a forced GC, from its /debug/pprof/heap?gc=1&debug=1: the daemon must
// run with ops.pprof (Options.Settings).
func (d *Daemon) HeapAfterGC(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		d.OpsURL+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("asynclspd %s: heap profile: %w", d.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("asynclspd %s: heap profile: %s (ops.pprof "+
			"not set?)", d.Name, resp.Status)
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), heapInuseLine)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("asynclspd %s: heap profile: %q: %w",
				d.Name, sc.Text(), err)
		}

		return n, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("asynclspd %s: heap profile: %w", d.Name, err)
	}

	return 0, fmt.Errorf("asynclspd %s: heap profile has no %q line",
		d.Name, strings.TrimSpace(heapInuseLine))
}
