package lsps0

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testKey is a peer's node key, distinct for each i.
func testKey(i byte) onionmsg.NodeKey {
	var k onionmsg.NodeKey
	k[0] = 0x02
	k[32] = i
	return k
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// checkResponse fails unless resp is what Answer promises for req: one
// JSON-RPC 2.0 response of at most MaxMessageSize bytes, UTF-8 without a 0
// byte, with "jsonrpc": "2.0", exactly one of result and error, and an id
// that is req's string id or null, null only with -32700; a -32602 has
// data.unrecognized, an array of strings. It returns the response decoded.
func checkResponse(t testing.TB, req, resp []byte) map[string]json.RawMessage {
	t.Helper()
	if len(resp) == 0 || len(resp) > MaxMessageSize {
		t.Fatalf("response of %d bytes", len(resp))
	}
	if !utf8.Valid(resp) || bytes.IndexByte(resp, 0) >= 0 {
		t.Fatalf("response not UTF-8 without NUL: %q", resp)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(resp, &r); err != nil || r == nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, resp)
	}
	if string(r["jsonrpc"]) != `"2.0"` {
		t.Fatalf(`response jsonrpc %s, want "2.0": %s`, r["jsonrpc"], resp)
	}
	_, hasResult := r["result"]
	_, hasError := r["error"]
	if hasResult == hasError || len(r) != 3 {
		t.Fatalf("response needs jsonrpc, id and one of result and error: %s", resp)
	}
	var e struct {
		Code    *int            `json:"code"`
		Message *string         `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if hasError {
		if err := json.Unmarshal(r["error"], &e); err != nil || e.Code == nil || e.Message == nil {
			t.Fatalf("error is not {code, message}: %s", resp)
		}
		if *e.Code == CodeInvalidParams {
			var d struct {
				Unrecognized *[]string `json:"unrecognized"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil || d.Unrecognized == nil {
				t.Fatalf("-32602 without data.unrecognized: %s", resp)
			}
		}
	}
	id := r["id"]
	switch {
	case string(id) == "null":
		if !hasError || *e.Code != CodeParseError {
			t.Fatalf("null id with other than -32700: %s", resp)
		}
	case len(id) > 0 && id[0] == '"':
		var sent map[string]json.RawMessage
		if err := json.Unmarshal(req, &sent); err != nil {
			t.Fatalf("id %s answered to a request that is no object: %s", id, resp)
		}
		var a, b string
		if json.Unmarshal(id, &a) != nil || json.Unmarshal(sent["id"], &b) != nil || a != b {
			t.Fatalf("response id %s, request id %s", id, sent["id"])
		}
	default:
		t.Fatalf("id neither a string nor null: %s", resp)
	}
	return r
}

// errorCode returns the response's error code, 0 for a result.
func errorCode(t testing.TB, r map[string]json.RawMessage) int {
	t.Helper()
	if _, ok := r["error"]; !ok {
		return 0
	}
	var e struct{ Code int }
	if err := json.Unmarshal(r["error"], &e); err != nil {
		t.Fatal(err)
	}
	return e.Code
}

// jsonEqual fails unless a and b are the same JSON value.
func jsonEqual(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got no JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want no JSON: %v: %s", err, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

// waitFor polls cond until it returns nil, failing after d.
func waitFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rpc returns a JSON-RPC request of method with id and params.
func rpc(id, method, params string) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%q,"method":%q,"params":%s}`, id, method, params)
}

// logLines counts the log lines that contain a text.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logLines) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, text) {
			n++
		}
	}
	return n
}
