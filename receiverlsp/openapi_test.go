package receiverlsp

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	testkit.DecodeOpenAPI(t, openAPI, &doc)
	return &doc
}

// openapi.json documents exactly the routes the handler serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var served []string
	e := newEnv(t)
	for _, rt := range e.role.routes() {
		served = append(served, rt.method+" "+rt.pattern)
		var op struct {
			Security []map[string][]string `json:"security"`
		}
		json.Unmarshal(doc.Paths[rt.pattern][strings.ToLower(rt.method)], &op)
		if (len(op.Security) > 0) != rt.auth {
			t.Errorf("%s %s: documented security %v, served with auth=%v",
				rt.method, rt.pattern, op.Security, rt.auth)
		}
	}
	testkit.SameRoutes(t, openAPI, served)
	resp, err := http.Get(e.api.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != string(openAPI) {
		t.Fatal("GET /v1/openapi.json does not serve the document")
	}
}

// Each documented schema has exactly the JSON fields of its Go type, and
// requires those that are never omitted.
func TestOpenAPIMatchesTypes(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]any{
		"ChallengeRequest": client.ChallengeRequest{}, "ChallengeResponse": client.ChallengeResponse{},
		"RegisterRequest": client.RegisterRequest{}, "RegisterResponse": client.RegisterResponse{},
		"UploadRequest": client.UploadRequest{}, "UploadResponse": client.UploadResponse{},
		"InvoiceResult": client.InvoiceResult{}, "InvoiceCounts": client.InvoiceCounts{},
		"Item": client.Item{}, "MailboxResponse": client.MailboxResponse{},
		"ReleaseRequest": client.ReleaseRequest{}, "ErrorBody": client.ErrorBody{},
		"ErrorResponse": client.ErrorResponse{},
	}
	if len(types) != len(doc.Components.Schemas) {
		t.Errorf("%d schemas documented, %d types", len(doc.Components.Schemas), len(types))
	}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var fields, always, documented []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("json")
			field, opts, _ := strings.Cut(tag, ",")
			fields = append(fields, field)
			if !strings.Contains(opts, "omitempty") {
				always = append(always, field)
			}
		}
		for p := range schema.Properties {
			documented = append(documented, p)
		}
		sort.Strings(fields)
		sort.Strings(always)
		sort.Strings(documented)
		required := slices.Sorted(slices.Values(schema.Required))
		if !slices.Equal(fields, documented) {
			t.Errorf("%s: fields %v, documented %v", name, fields, documented)
		}
		if !slices.Equal(always, required) {
			t.Errorf("%s: always present %v, documented as required %v", name, always, required)
		}
	}
}

// The documented error codes are the codes the API answers with.
func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				ErrorBody struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"ErrorBody"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, err := range []error{ErrInvalid, ErrUnauthorized, ErrForbidden,
		ErrNotFound, ErrConflict, ErrTooLarge, ErrUnavailable, io.EOF} {
		code, _, _ := apiError(err)
		codes = append(codes, code)
	}
	got := slices.Sorted(slices.Values(doc.Components.Schemas.ErrorBody.Properties.Code.Enum))
	slices.Sort(codes)
	if !slices.Equal(got, codes) {
		t.Fatalf("documented codes %v, answered codes %v", got, codes)
	}
}

// The documented reasons for refusing an invoice are the client's.
func TestOpenAPIRejectReasons(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas struct {
				InvoiceResult struct {
					Properties struct {
						Reason struct {
							Enum []string `json:"enum"`
						} `json:"reason"`
					} `json:"properties"`
				} `json:"InvoiceResult"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	want := []string{client.RejectMalformed, client.RejectTooLong,
		client.RejectWrongNode, client.RejectExpired, client.RejectShortLived,
		client.RejectNoRouteHint, client.RejectZeroAmount, client.RejectDuplicate,
		client.RejectBlindedPaths, client.RejectStockFull}
	got := slices.Sorted(slices.Values(doc.Components.Schemas.InvoiceResult.Properties.Reason.Enum))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("documented %v, the client's %v", got, want)
	}
}
