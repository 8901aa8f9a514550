package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/ops/grafana"
)

// Every series the Grafana dashboard queries is on a real /metrics: bob's
// ops handler, with his sender role and bus connection registered as the
// daemon registers them, after a payment settled, one canceled and one
// still held.
func TestDashboardSeriesExist(t *testing.T) {
	srv := testkit.StartNATS(t)
	e := newLSPEnv(t, envOptions{urls: []string{srv.ClientURL()}, replicas: 1,
		ackWait: 5 * time.Second})
	if _, err := lnd.NewMetrics(e.bob.registry); err != nil {
		t.Fatal(err)
	}
	e.upload(3)
	ctx := context.Background()

	h1, err := e.createAndPay(ctx, "dash-1")
	if err != nil {
		t.Fatal(err)
	}
	relCtx, stopRelease := context.WithCancel(ctx)
	released := make(chan struct{})
	go func() { defer close(released); e.releaseLoop(relCtx, 1) }()
	eventually(t, 15*time.Second, "first payment settled", stateIs(e, h1.ID, holdstore.StateSettled))
	stopRelease()
	<-released
	h2, err := e.createAndPay(ctx, "dash-2")
	if err != nil {
		t.Fatal(err)
	}
	h3, err := e.createAndPay(ctx, "dash-3")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "second payment held", stateIs(e, h2.ID, holdstore.StateHeld))
	eventually(t, 10*time.Second, "third payment held", stateIs(e, h3.ID, holdstore.StateHeld))
	if err := e.bob.sender.Cancel(ctx, h2.ID, holdstore.ReasonCanceledByOperator); err != nil {
		t.Fatal(err)
	}

	ops := httptest.NewServer((&daemon{cfg: &Config{}, reg: e.bob.registry}).opsHandler())
	t.Cleanup(ops.Close)
	names := dashboardSeries(t)
	t.Logf("%d series the dashboard queries: %v", len(names), names)
	eventually(t, 10*time.Second, "every series the dashboard queries", func() error {
		have := scrape(t, ops.URL+"/metrics")
		var missing []string
		for _, n := range names {
			if !have[n] {
				missing = append(missing, n)
			}
		}
		if missing != nil {
			return fmt.Errorf("not on /metrics: %v", missing)
		}
		return nil
	})
}

// dashboardSeries are the metric names in the dashboard's queries.
func dashboardSeries(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`asynclsp_[a-z0-9_]+`)
	var names []string
	for _, q := range grafana.Queries() {
		for _, n := range re.FindAllString(q, -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("the dashboard queries only %v", names)
	}
	return names
}

// scrape reads the sample names of a /metrics page.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	have := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		have[name] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return have
}

func stateIs(e *lspEnv, id holdstore.ID, want holdstore.State) func() error {
	return func() error {
		h, err := e.bob.store.Get(context.Background(), id)
		if err != nil {
			return err
		}
		if h.State != want {
			return fmt.Errorf("state %s, want %s", h.State, want)
		}
		return nil
	}
}
