package lsps0

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// testAuth accepts "Bearer peer-<n>" as the peer testKey(n).
func testAuth(r *http.Request) (onionmsg.NodeKey, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer peer-7":
		return testKey(7), nil
	case "":
		return onionmsg.NodeKey{}, errors.New("no credentials")
	default:
		return onionmsg.NodeKey{}, errors.New("unknown token")
	}
}

func TestHTTPHandler(t *testing.T) {
	var authCalls int
	s := testServer(t)
	srv := httptest.NewServer(s.HTTPHandler(func(r *http.Request) (onionmsg.NodeKey, error) {
		authCalls++
		return testAuth(r)
	}))
	defer srv.Close()

	post := func(token, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusMethodNotAllowed &&
			ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		return resp, b
	}

	tests := []struct {
		name   string
		token  string
		body   string
		status int
		want   string // the whole JSON-RPC response
	}{{
		name: "the STANDARDS vector", token: "peer-7",
		body:   `{"jsonrpc":"2.0","id":"request:id:xyz123","method":"lsps0.list_protocols","params":{}}`,
		status: http.StatusOK,
		want:   `{"jsonrpc":"2.0","id":"request:id:xyz123","result":{"protocols":[5]}}`,
	}, {
		name: "the caller is who auth says", token: "peer-7",
		body:   string(rpc("p", "test.peer", "{}")),
		status: http.StatusOK,
		want:   `{"jsonrpc":"2.0","id":"p","result":{"peer":"` + testKey(7).String() + `"}}`,
	}, {
		name: "a JSON-RPC error is HTTP 200", token: "peer-7",
		body:   string(rpc("m", "lsps1.get_info", "{}")),
		status: http.StatusOK,
		want:   `{"jsonrpc":"2.0","id":"m","error":{"code":-32601,"message":"Method not found"}}`,
	}, {
		name: "not JSON", token: "peer-7", body: "{",
		status: http.StatusOK,
		want:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: the payload is not one JSON object"}}`,
	}, {
		name: "no credentials", body: string(rpc("a", "lsps0.list_protocols", "{}")),
		status: http.StatusUnauthorized,
		want:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Unauthorized"}}`,
	}, {
		name: "wrong credentials", token: "peer-8", body: string(rpc("a", "lsps0.list_protocols", "{}")),
		status: http.StatusUnauthorized,
		want:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Unauthorized"}}`,
	}, {
		name: "a body of MaxMessageSize", token: "peer-7",
		body:   string(rpc("max", "lsps0.list_protocols", "{}")) + strings.Repeat(" ", MaxMessageSize-len(rpc("max", "lsps0.list_protocols", "{}"))),
		status: http.StatusOK,
		want:   `{"jsonrpc":"2.0","id":"max","result":{"protocols":[5]}}`,
	}, {
		name: "a body over MaxMessageSize", token: "peer-7",
		body:   string(rpc("big", "lsps0.list_protocols", "{}")) + strings.Repeat(" ", MaxMessageSize),
		status: http.StatusRequestEntityTooLarge,
		want:   `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error: a message of more than 65533 bytes"}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			jsonEqual(t, body, tc.want)
		})
	}

	// Only POST; auth is not even asked.
	before := authCalls
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost ||
		authCalls != before {
		t.Fatalf("GET: HTTP %d, Allow %q, %d auth calls", resp.StatusCode, resp.Header.Get("Allow"),
			authCalls-before)
	}
}

// TestHTTPHandlerUnauthorizedUnread: a refused caller's body is not read.
func TestHTTPHandlerUnauthorizedUnread(t *testing.T) {
	s := testServer(t)
	h := s.HTTPHandler(testAuth)
	body := &countingReader{r: strings.NewReader(string(rpc("a", "lsps0.list_protocols", "{}")))}
	req := httptest.NewRequest(http.MethodPost, "/", body)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || body.n != 0 {
		t.Fatalf("HTTP %d after reading %d bytes", rec.Code, body.n)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || string(r["id"]) != "null" {
		t.Fatalf("body %s", rec.Body.Bytes())
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
