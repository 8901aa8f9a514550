package daemon

import (
	"encoding/json"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
)

// adminDoc is the part of openapi.json the tests read.
type adminDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]struct {
			Ref         string `json:"$ref"`
			Description string `json:"description"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Responses map[string]struct {
			Description string `json:"description"`
		} `json:"responses"`
		Schemas map[string]struct {
			Enum       []string                   `json:"enum"`
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

func readAdminDoc(t *testing.T) *adminDoc {
	t.Helper()
	var doc adminDoc
	testkit.ReadOpenAPI(t, "openapi.json", &doc)
	return &doc
}

// Every route the admin API serves is documented, and nothing else is.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b := testkit.ReadOpenAPI(t, "openapi.json", &adminDoc{})
	var served []string
	for _, rt := range adminRoutes {
		served = append(served, rt.method+" "+rt.pattern)
	}
	testkit.SameRoutes(t, b, served)
}

// The documented error codes are the API's, each under its status; every
// operation documents 401, 403, 405 and 500.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := readAdminDoc(t)
	status := map[string]int{string(adminclient.CodeInternal): http.StatusInternalServerError}
	for _, c := range adminCodes {
		status[string(c.code)] = c.status
	}
	enum := slices.Sorted(slices.Values(doc.Components.Schemas["ErrorCode"].Enum))
	var codes []string
	for c := range status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	if !slices.Equal(enum, codes) {
		t.Errorf("ErrorCode enum %v, the API answers %v", enum, codes)
	}
	codeRe := regexp.MustCompile("`([a-z_]+)`")
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			for _, must := range []string{"401", "403", "405", "500"} {
				if _, ok := op.Responses[must]; !ok {
					t.Errorf("%s: no %s response", where, must)
				}
			}
			for code, resp := range op.Responses {
				n, _ := strconv.Atoi(code)
				if n < 400 {
					continue
				}
				desc := resp.Description
				if ref, ok := strings.CutPrefix(resp.Ref, "#/components/responses/"); ok {
					desc = doc.Components.Responses[ref].Description
				}
				found := codeRe.FindAllStringSubmatch(desc, -1)
				if len(found) == 0 {
					t.Errorf("%s %s: names no error code", where, code)
				}
				for _, m := range found {
					if status[m[1]] != n {
						t.Errorf("%s %s: code %s has status %d", where, code, m[1], status[m[1]])
					}
				}
			}
		}
	}
}

// Each documented schema has exactly the JSON fields of its Go type, and
// requires those that are never omitted; the mailbox states are the same.
func TestOpenAPIMatchesTypes(t *testing.T) {
	doc := readAdminDoc(t)
	types := map[string]any{
		"Info": adminclient.Info{}, "CreateTokenRequest": adminclient.CreateTokenRequest{},
		"Token": adminclient.Token{}, "CreatedToken": adminclient.CreatedToken{},
		"TokenList": adminclient.TokenList{}, "InvoiceCounts": adminclient.InvoiceCounts{},
		"Receiver": adminclient.Receiver{}, "ReceiverPage": adminclient.ReceiverPage{},
		"MailboxItem": adminclient.MailboxItem{}, "MailboxPage": adminclient.MailboxPage{},
		"HoldStats": adminclient.HoldStats{}, "TokenStats": adminclient.TokenStats{},
		"Stats": adminclient.Stats{}, "Error": adminclient.ErrorBody{},
		"ReannounceRequest": adminclient.ReannounceRequest{},
		"Reannounced":       adminclient.Reannounced{},
	}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var fields, always []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			field, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			fields = append(fields, field)
			if !strings.Contains(opts, "omitempty") {
				always = append(always, field)
			}
		}
		var documented []string
		for p := range schema.Properties {
			documented = append(documented, p)
		}
		slices.Sort(fields)
		slices.Sort(always)
		slices.Sort(documented)
		if !slices.Equal(fields, documented) {
			t.Errorf("%s: fields %v, documented %v", name, fields, documented)
		}
		if required := slices.Sorted(slices.Values(schema.Required)); !slices.Equal(always, required) {
			t.Errorf("%s: always present %v, documented as required %v", name, always, required)
		}
	}
	if got := doc.Components.Schemas["MailboxState"].Enum; !slices.Equal(got, adminclient.MailboxStates) {
		t.Errorf("MailboxState enum %v, code has %v", got, adminclient.MailboxStates)
	}
}
