package senderlsp

import (
	"encoding/json"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/senderlsp/client"
)

// openAPI is the part of openapi.json the tests read.
type openAPI struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		OperationID string                     `json:"operationId"`
		Responses   map[string]openAPIResponse `json:"responses"`
	} `json:"paths"`
	Components struct {
		Responses map[string]openAPIResponse `json:"responses"`
		Schemas   map[string]struct {
			Enum []string `json:"enum"`
		} `json:"schemas"`
	} `json:"components"`
}

type openAPIResponse struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
}

func readOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	var doc openAPI
	testkit.ReadOpenAPI(t, "openapi.json", &doc)
	return &doc
}

// Every route the handler serves is in openapi.json, and every operation
// there is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b := testkit.ReadOpenAPI(t, "openapi.json", &openAPI{})
	var served []string
	for _, rt := range apiRoutes {
		served = append(served, rt.method+" "+rt.pattern)
	}
	testkit.SameRoutes(t, b, served)
}

// The document's enums are the code's: error codes, states, reasons.
func TestOpenAPIEnums(t *testing.T) {
	doc := readOpenAPI(t)
	var codes []string
	for code := range apiCodes {
		codes = append(codes, code)
	}
	var states, reasons []string
	for _, st := range holdstore.States {
		states = append(states, string(st))
	}
	reasons = append(reasons, "")
	for _, r := range holdstore.Reasons {
		reasons = append(reasons, string(r))
	}
	for name, want := range map[string][]string{
		"ErrorCode": codes, "State": states, "Reason": reasons,
	} {
		got := slices.Clone(doc.Components.Schemas[name].Enum)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s enum %v, code has %v", name, got, want)
		}
	}
}

// Every error response names its codes, each with the status it is
// documented under; every operation documents 401 and 405.
func TestOpenAPIErrorResponses(t *testing.T) {
	doc := readOpenAPI(t)
	codeRe := regexp.MustCompile("`([a-z_]+)`")
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			for _, must := range []string{"401", "405", "500"} {
				if _, ok := op.Responses[must]; !ok {
					t.Errorf("%s: no %s response", where, must)
				}
			}
			for status, resp := range op.Responses {
				n, err := strconv.Atoi(status)
				if err != nil {
					t.Errorf("%s: response %q", where, status)
					continue
				}
				if n < 400 {
					continue
				}
				if ref, ok := strings.CutPrefix(resp.Ref, "#/components/responses/"); ok {
					resp = doc.Components.Responses[ref]
				}
				found := codeRe.FindAllStringSubmatch(resp.Description, -1)
				if len(found) == 0 {
					t.Errorf("%s %s: names no error code", where, status)
				}
				for _, m := range found {
					if got, ok := apiCodes[m[1]]; !ok || got != n {
						t.Errorf("%s %s: code %s has status %d", where, status, m[1], got)
					}
				}
			}
		}
	}
}

// A payment's fields are the same three times: in the handler's JSON, in
// the document's Payment schema (every one required), and in the Go client.
func TestOpenAPIPaymentFields(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	testkit.ReadOpenAPI(t, "openapi.json", &doc)
	schema := doc.Components.Schemas["Payment"]
	documented := slices.Sorted(maps.Keys(schema.Properties))

	b, err := json.Marshal(toPaymentJSON(&holdstore.Hold{}))
	if err != nil {
		t.Fatal(err)
	}
	var served map[string]any
	if err := json.Unmarshal(b, &served); err != nil {
		t.Fatal(err)
	}
	var parsed []string
	typ := reflect.TypeFor[client.Payment]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		parsed = append(parsed, name)
	}
	slices.Sort(parsed)
	for what, got := range map[string][]string{
		"required": slices.Sorted(slices.Values(schema.Required)),
		"served":   slices.Sorted(maps.Keys(served)),
		"client":   parsed,
	} {
		if !slices.Equal(got, documented) {
			t.Errorf("%s fields %v, documented %v", what, got, documented)
		}
	}
}
