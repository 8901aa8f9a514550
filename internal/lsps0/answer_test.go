package lsps0

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// testServer has lsps0.list_protocols, an LSPS5 method, a method of our
// own (protocol 0) and methods that misbehave.
func testServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := NewServer(quietLog(), opts...)
	type setWebhook struct {
		AppName string `json:"app_name"`
		Webhook string `json:"webhook"`
	}
	s.Handle(5, "lsps5.set_webhook", func(_ context.Context, _ onionmsg.NodeKey, params json.RawMessage) (any, error) {
		var p setWebhook
		if err := DecodeParams(params, &p); err != nil {
			return nil, err
		}
		if p.AppName == "" {
			return nil, InvalidParams("app_name is required")
		}
		if len(p.AppName) > 64 {
			return nil, &Error{Code: 500, Message: "too_long", Data: map[string]any{"max": 64}}
		}
		return map[string]any{"num_webhooks": 1, "max_webhooks": 10, "no_change": false}, nil
	})
	s.Handle(0, "asynclsp.echo", func(_ context.Context, _ onionmsg.NodeKey, params json.RawMessage) (any, error) {
		return params, nil
	})
	s.Handle(0, "test.fail", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return nil, errors.New("database is locked")
	})
	s.Handle(0, "test.bad_params", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return nil, Errorf(CodeInvalidParams, "bad")
	})
	s.Handle(0, "test.panic", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		panic("boom")
	})
	s.Handle(0, "test.unmarshalable", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return map[string]any{"c": make(chan int)}, nil
	})
	s.Handle(0, "test.huge", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return map[string]string{"blob": strings.Repeat("x", MaxMessageSize)}, nil
	})
	s.Handle(0, "test.peer", func(_ context.Context, peer onionmsg.NodeKey, _ json.RawMessage) (any, error) {
		return map[string]string{"peer": peer.String()}, nil
	})
	return s
}

// TestListProtocolsVector: the vector of STANDARDS.md (LDK's
// lsps0/msgs.rs), compared as JSON; 0 is never listed (50:581-582), each
// protocol once.
func TestListProtocolsVector(t *testing.T) {
	s := testServer(t)
	s.Handle(5, "lsps5.list_webhooks", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return nil, nil
	})
	s.Handle(2, "lsps2.get_info", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return nil, nil
	})
	req := []byte(`{"jsonrpc":"2.0","id":"request:id:xyz123","method":"lsps0.list_protocols","params":{}}`)
	resp := s.Answer(context.Background(), testKey(1), req)
	checkResponse(t, req, resp)
	jsonEqual(t, resp, `{"jsonrpc":"2.0","id":"request:id:xyz123","result":{"protocols":[2,5]}}`)

	// The example of 50:595-601: other member order, whitespace.
	req = []byte("\t{\n  \"method\": \"lsps0.list_protocols\",\r\n  \"jsonrpc\": \"2.0\",\n" +
		"  \"id\": \"example#3cad6a54d302edba4c9ade2f7ffac098\",\n  \"params\": {}\n} \n")
	resp = s.Answer(context.Background(), testKey(1), req)
	checkResponse(t, req, resp)
	jsonEqual(t, resp, `{"jsonrpc":"2.0","id":"example#3cad6a54d302edba4c9ade2f7ffac098","result":{"protocols":[2,5]}}`)

	// No protocol but ours: an empty list, not null.
	resp = NewServer(quietLog()).Answer(context.Background(), testKey(1), rpc("x", "lsps0.list_protocols", "{}"))
	jsonEqual(t, resp, `{"jsonrpc":"2.0","id":"x","result":{"protocols":[]}}`)
}

// TestInvalidParamsShape: an unrecognized param is answered exactly as the
// example of 50:418-450.
func TestInvalidParamsShape(t *testing.T) {
	s := NewServer(quietLog())
	s.Handle(999, "example.method_name", func(_ context.Context, _ onionmsg.NodeKey, params json.RawMessage) (any, error) {
		var p struct {
			Future2 string `json:"future_feature2_param"`
		}
		return nil, DecodeParams(params, &p)
	})
	req := []byte(`{
  "jsonrpc": "2.0",
  "method": "example.method_name",
  "params": {
    "future_feature1_param": "value1",
    "future_feature2_param": "value2"
  },
  "id": "42"
}`)
	resp := s.Answer(context.Background(), testKey(1), req)
	checkResponse(t, req, resp)
	jsonEqual(t, resp, `{
  "jsonrpc": "2.0",
  "error": {
    "code": -32602,
    "message": "Invalid params",
    "data": {
      "unrecognized": ["future_feature1_param"]
    }
  },
  "id": "42"
}`)
}

// TestAnswer: what each kind of message is answered (bLIP-50 and LDK's
// lightning-liquidity: see parseRequest).
func TestAnswer(t *testing.T) {
	s := testServer(t)
	big := `{"jsonrpc":"2.0","id":"big","method":"asynclsp.echo","params":{"a":"` +
		strings.Repeat("y", MaxMessageSize-100) + `"}}`
	tests := []struct {
		name    string
		payload string
		code    int    // 0: a result
		id      string // the response's id as JSON
		want    string // the whole response, if set
	}{
		// 50:94-127: a bad message format is -32700 with a null id.
		{name: "empty", payload: "", code: CodeParseError, id: "null"},
		{name: "only whitespace", payload: " \t\r\n", code: CodeParseError, id: "null"},
		{name: "unfinished", payload: "{", code: CodeParseError, id: "null"},
		{name: "array (50:104)", payload: " [ ] ", code: CodeParseError, id: "null"},
		{name: "batch", payload: `[` + string(rpc("a", "lsps0.list_protocols", "{}")) + `]`,
			code: CodeParseError, id: "null"},
		{name: "two objects (50:107)", payload: " { } { }", code: CodeParseError, id: "null"},
		{name: "object and a half (50:107)", payload: " { } { ", code: CodeParseError, id: "null"},
		{name: "trailing data", payload: string(rpc("a", "lsps0.list_protocols", "{}")) + "x",
			code: CodeParseError, id: "null"},
		{name: "null", payload: "null", code: CodeParseError, id: "null"},
		{name: "string", payload: `"lsps0.list_protocols"`, code: CodeParseError, id: "null"},
		{name: "number", payload: "42", code: CodeParseError, id: "null"},
		{name: "NUL byte (50:109)", payload: `{"jsonrpc":"2.0","id":"a","method":"lsps0.list_protocols"}` + "\x00",
			code: CodeParseError, id: "null"},
		{name: "NUL byte in a string", payload: "{\"jsonrpc\":\"2.0\",\"id\":\"a\x00\",\"method\":\"lsps0.list_protocols\"}",
			code: CodeParseError, id: "null"},
		{name: "not UTF-8", payload: "{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"lsps0.list_protocols\"}",
			code: CodeParseError, id: "null"},
		{name: "empty object (50:103 passes the first check only)", payload: " { } ",
			code: CodeParseError, id: "null"},
		// 50:113-114, 194-195, 488: no string id, not a request.
		{name: "notification", payload: `{"jsonrpc":"2.0","method":"lsps0.list_protocols","params":{}}`,
			code: CodeParseError, id: "null"},
		{name: "id a number", payload: `{"jsonrpc":"2.0","id":7,"method":"lsps0.list_protocols"}`,
			code: CodeParseError, id: "null"},
		{name: "id null", payload: `{"jsonrpc":"2.0","id":null,"method":"lsps0.list_protocols"}`,
			code: CodeParseError, id: "null"},
		{name: "id an object", payload: `{"jsonrpc":"2.0","id":{"a":"b"},"method":"lsps0.list_protocols"}`,
			code: CodeParseError, id: "null"},
		{name: "id too long", payload: string(rpc(strings.Repeat("i", MaxIDSize), "lsps0.list_protocols", "{}")),
			code: CodeParseError, id: "null"},
		{name: "a response", payload: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`,
			code: CodeParseError, id: "null"},
		// A string id, not a valid request: its id, -32600.
		{name: "jsonrpc 1.0", payload: `{"jsonrpc":"1.0","id":"a","method":"lsps0.list_protocols"}`,
			code: CodeInvalidRequest, id: `"a"`},
		{name: "jsonrpc a number", payload: `{"jsonrpc":2.0,"id":"a","method":"lsps0.list_protocols"}`,
			code: CodeInvalidRequest, id: `"a"`},
		{name: "no jsonrpc", payload: `{"id":"a","method":"lsps0.list_protocols"}`,
			code: CodeInvalidRequest, id: `"a"`},
		{name: "no method", payload: `{"jsonrpc":"2.0","id":"a","params":{}}`,
			code: CodeInvalidRequest, id: `"a"`},
		{name: "method null", payload: `{"jsonrpc":"2.0","id":"a","method":null}`,
			code: CodeInvalidRequest, id: `"a"`},
		{name: "method a number", payload: `{"jsonrpc":"2.0","id":"a","method":5}`,
			code: CodeInvalidRequest, id: `"a"`},
		// 50:196-197: by-name params only.
		{name: "params by position", payload: string(rpc("a", "lsps0.list_protocols", `[]`)),
			code: CodeInvalidParams, id: `"a"`},
		{name: "params a string", payload: string(rpc("a", "lsps0.list_protocols", `"x"`)),
			code: CodeInvalidParams, id: `"a"`},
		// 50:679-681.
		{name: "unknown method", payload: string(rpc("a", "lsps1.get_info", "{}")),
			code: CodeMethodNotFound, id: `"a"`,
			want: `{"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"Method not found"}}`},
		{name: "empty method", payload: string(rpc("a", "", "{}")),
			code: CodeMethodNotFound, id: `"a"`},
		// 50:675-678.
		{name: "unrecognized param", payload: string(rpc("a", "lsps0.list_protocols", `{"verbose":true}`)),
			code: CodeInvalidParams, id: `"a"`,
			want: `{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"Invalid params","data":{"unrecognized":["verbose"]}}}`},
		{name: "params named in another case", payload: string(rpc("a", "lsps5.set_webhook",
			`{"App_Name":"x","webhook":"https://x"}`)),
			code: CodeInvalidParams, id: `"a"`},
		{name: "param of the wrong type", payload: string(rpc("a", "lsps5.set_webhook",
			`{"app_name":5,"webhook":"https://x"}`)),
			code: CodeInvalidParams, id: `"a"`},
		{name: "a param missing: the handler's InvalidParams", payload: string(rpc("a", "lsps5.set_webhook",
			`{"webhook":"https://x"}`)),
			code: CodeInvalidParams, id: `"a"`},
		{name: "a -32602 without data gets data.unrecognized", payload: string(rpc("a", "test.bad_params", `{}`)),
			code: CodeInvalidParams, id: `"a"`,
			want: `{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"bad","data":{"unrecognized":[]}}}`},
		// Fine requests.
		{name: "params absent", payload: `{"jsonrpc":"2.0","id":"a","method":"lsps0.list_protocols"}`, id: `"a"`},
		{name: "params null", payload: string(rpc("a", "lsps0.list_protocols", "null")), id: `"a"`},
		{name: "members we do not know", payload: `{"jsonrpc":"2.0","id":"a","method":"lsps0.list_protocols","x":1}`,
			id: `"a"`},
		{name: "empty id", payload: string(rpc("", "lsps0.list_protocols", "{}")), id: `""`},
		{name: "id with escapes", payload: `{"jsonrpc":"2.0","id":"a\u003c\"\\b","method":"lsps0.list_protocols"}`,
			id: `"a\u003c\"\\b"`}, // echoed as sent
		{name: "a method's own error code and data", payload: string(rpc("a", "lsps5.set_webhook",
			`{"app_name":"`+strings.Repeat("n", 65)+`","webhook":"https://x"}`)),
			code: 500, id: `"a"`,
			want: `{"jsonrpc":"2.0","id":"a","error":{"code":500,"message":"too_long","data":{"max":64}}}`},
		// Our failures: -32603, the detail only logged.
		{name: "handler error", payload: string(rpc("a", "test.fail", "{}")), code: CodeInternalError, id: `"a"`,
			want: `{"jsonrpc":"2.0","id":"a","error":{"code":-32603,"message":"Internal error"}}`},
		{name: "handler panics", payload: string(rpc("a", "test.panic", "{}")), code: CodeInternalError, id: `"a"`},
		{name: "result does not marshal", payload: string(rpc("a", "test.unmarshalable", "{}")),
			code: CodeInternalError, id: `"a"`},
		{name: "response over MaxMessageSize", payload: string(rpc("a", "test.huge", "{}")),
			code: CodeInternalError, id: `"a"`},
		{name: "echo just under the limit", payload: big, id: `"big"`},
		{name: "message over MaxMessageSize", payload: big + strings.Repeat(" ", MaxMessageSize),
			code: CodeParseError, id: "null"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Answer(context.Background(), testKey(1), []byte(tc.payload))
			r := checkResponse(t, []byte(tc.payload), resp)
			if got := errorCode(t, r); got != tc.code {
				t.Errorf("code %d, want %d: %s", got, tc.code, resp)
			}
			if got := string(r["id"]); got != tc.id {
				t.Errorf("id %s, want %s", got, tc.id)
			}
			if tc.want != "" {
				jsonEqual(t, resp, tc.want)
			}
		})
	}
}

// TestDecodeParams: the -32602 shapes DecodeParams returns.
func TestDecodeParams(t *testing.T) {
	type params struct {
		AppName string `json:"app_name"`
		Max     int    `json:"max,omitempty"`
		Skip    string `json:"-"`
	}
	tests := []struct {
		params       string
		unrecognized []string // nil: no error
		wantErr      bool
	}{
		{params: ``},
		{params: `null`},
		{params: `{}`},
		{params: `{"app_name":"a","max":3}`},
		{params: `{"b":1,"a":2,"app_name":"x"}`, unrecognized: []string{"a", "b"}, wantErr: true},
		{params: `{"Skip":"x"}`, unrecognized: []string{"Skip"}, wantErr: true},
		{params: `{"APP_NAME":"x"}`, unrecognized: []string{"APP_NAME"}, wantErr: true},
		{params: `{"max":"3"}`, unrecognized: []string{}, wantErr: true},
		{params: `[]`, unrecognized: []string{}, wantErr: true},
	}
	for _, tc := range tests {
		var p params
		err := DecodeParams(json.RawMessage(tc.params), &p)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v", tc.params, err)
			continue
		}
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidParams {
			t.Errorf("%s: error %v, want -32602", tc.params, err)
			continue
		}
		b, _ := json.Marshal(e.Data)
		want, _ := json.Marshal(map[string]any{"unrecognized": tc.unrecognized})
		if string(b) != string(want) {
			t.Errorf("%s: data %s, want %s", tc.params, b, want)
		}
	}
}

// TestAnswerMetrics: requests are counted by method and code; a method
// nobody registered counts as "unknown".
func TestAnswerMetrics(t *testing.T) {
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := testServer(t, WithMetrics(m))
	ctx := context.Background()
	s.Answer(ctx, testKey(1), rpc("a", "lsps0.list_protocols", "{}"))
	s.Answer(ctx, testKey(1), rpc("b", "lsps0.list_protocols", `{"x":1}`))
	s.Answer(ctx, testKey(1), rpc("c", "evil."+strings.Repeat("z", 100), "{}"))
	s.Answer(ctx, testKey(1), []byte("garbage"))
	s.Answer(ctx, testKey(1), rpc("d", "test.fail", "{}"))
	for _, c := range []struct {
		method, code string
		want         float64
	}{
		{"lsps0.list_protocols", "ok", 1},
		{"lsps0.list_protocols", "-32602", 1},
		{"unknown", "-32601", 1},
		{"unknown", "-32700", 1},
		{"test.fail", "-32603", 1},
	} {
		if got := counterValue(t, m.requests.WithLabelValues(c.method, c.code)); got != c.want {
			t.Errorf("requests_total{%s, %s} = %v, want %v", c.method, c.code, got, c.want)
		}
	}
}
