package testkit

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// SameRoutes fails t unless the OpenAPI document doc describes exactly the
// routes served ("METHOD /path", as the handlers register them): a route
// added to a handler but not to its document, or the reverse, fails.
func SameRoutes(t testing.TB, doc []byte, served []string) {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	var documented []string
	for path, ops := range d.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served = slices.Clone(served)
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("routes served:\n  %s\ndocumented:\n  %s",
			strings.Join(served, "\n  "), strings.Join(documented, "\n  "))
	}
}
