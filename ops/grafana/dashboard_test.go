package grafana

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "write asynclsp-dashboard.json from dashboard.go")

const jsonFile = "asynclsp-dashboard.json"

// The checked-in dashboard is what dashboard.go builds.
func TestDashboardJSONCurrent(t *testing.T) {
	got, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(jsonFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what dashboard.go builds: run go test ./ops/grafana -update", jsonFile)
	}
	for _, q := range Queries() {
		if !strings.Contains(string(got), jsonString(q)) {
			t.Fatalf("query %s is not in the dashboard", q)
		}
	}
}

// jsonString is s as encoding/json writes it inside a string, without
// HTML escaping of < > &.
func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "<", `\u003c`, ">", `\u003e`, "&", `\u0026`)
	return r.Replace(s)
}
