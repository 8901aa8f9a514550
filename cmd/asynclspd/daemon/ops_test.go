package daemon

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// With ops.pprof the ops listener serves Go's profiler; without it, not.
func TestOpsHandlerPProf(t *testing.T) {
	get := func(pprof bool, path string) *httptest.ResponseRecorder {
		d := &daemon{cfg: &Config{Ops: OpsConfig{Listen: "127.0.0.1:0", PProf: pprof}},
			reg: prometheus.NewRegistry()}
		rec := httptest.NewRecorder()
		d.opsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	// The text form ends with runtime.MemStats, read after the forced GC.
	rec := get(true, "/debug/pprof/heap?gc=1&debug=1")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "\n# HeapInuse = ") {
		t.Fatalf("heap with ops.pprof: %d, %.200q", rec.Code, rec.Body.String())
	}
	if rec := get(true, "/debug/pprof/heap?gc=1"); rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		t.Fatalf("heap profile with ops.pprof: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if rec := get(true, "/debug/pprof/"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("index with ops.pprof: %d", rec.Code)
	}
	for _, path := range []string{"/debug/pprof/heap?gc=1", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if rec := get(false, path); rec.Code != http.StatusNotFound {
			t.Errorf("%s without ops.pprof: %d, want 404", path, rec.Code)
		}
	}
	// The rest of the ops listener is there either way.
	for _, pprof := range []bool{false, true} {
		if rec := get(pprof, "/healthz"); rec.Code != http.StatusOK {
			t.Errorf("/healthz with ops.pprof=%v: %d", pprof, rec.Code)
		}
	}
}
