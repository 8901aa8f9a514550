package testkit

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// ReadOpenAPI reads the OpenAPI document at path into doc (see DecodeOpenAPI)
// and returns its bytes.
func ReadOpenAPI(t testing.TB, path string, doc any) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	DecodeOpenAPI(t, b, doc)
	return b
}

// DecodeOpenAPI decodes an OpenAPI 3.1 document into doc, failing t if it is
// not one.
func DecodeOpenAPI(t testing.TB, b []byte, doc any) {
	t.Helper()
	var v struct {
		OpenAPI string `json:"openapi"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("openapi document: %v", err)
	}
	if !strings.HasPrefix(v.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", v.OpenAPI)
	}
	if err := json.Unmarshal(b, doc); err != nil {
		t.Fatalf("openapi document: %v", err)
	}
}

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
