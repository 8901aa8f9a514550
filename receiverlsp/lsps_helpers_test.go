package receiverlsp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// Calling the role's LSPS0 methods, as lnd's custom messages bring them
// (Role.LSPS().Answer) and as a backend posts them (POST /v1/lsps0).

// lspsResponse is an LSPS0 response as a test reads it.
type lspsResponse struct {
	ID     string          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *lsps0.Error    `json:"error"`
}

// lspsRequest is the JSON-RPC request of method with params.
func lspsRequest(t testing.TB, method string, params any) []byte {
	t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	if params == nil {
		p = []byte("{}")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "test:1",
		"method": method, "params": json.RawMessage(p)})
	return b
}

// lsps has peer call method over LSPS0, as lnd's custom messages bring it
// (BOLT8 authenticated the peer), and returns the result or the error.
func (e *env) lsps(peer onionmsg.NodeKey, method string, params any) (json.RawMessage, *lsps0.Error) {
	e.t.Helper()
	raw := e.role.LSPS().Answer(e.ctx, peer, lspsRequest(e.t, method, params))
	var resp lspsResponse
	if err := json.Unmarshal(raw, &resp); err != nil || resp.ID != "test:1" {
		e.t.Fatalf("%s: response %s: %v", method, raw, err)
	}
	return resp.Result, resp.Error
}

// lspsOK calls method and decodes its result into out, failing on an error.
func (e *env) lspsOK(peer onionmsg.NodeKey, method string, params, out any) {
	e.t.Helper()
	res, lerr := e.lsps(peer, method, params)
	if lerr != nil {
		e.t.Fatalf("%s: %+v", method, lerr)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			e.t.Fatalf("%s: result %s: %v", method, res, err)
		}
	}
}

// postLSPS0 posts an LSPS0 request to POST /v1/lsps0 with rc's token and
// returns the JSON-RPC response.
func (e *env) postLSPS0(rc *receiver, body []byte) []byte {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.api.URL+"/v1/lsps0", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rc.client.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("POST /v1/lsps0: %s %s", resp.Status, b)
	}
	return b
}

// wantLSPSCode fails unless lerr has the code.
func wantLSPSCode(t testing.TB, what string, lerr *lsps0.Error, code int) {
	t.Helper()
	if lerr == nil || lerr.Code != code {
		t.Fatalf("%s: error %+v, want code %d", what, lerr, code)
	}
}
