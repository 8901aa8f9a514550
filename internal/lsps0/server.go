package lsps0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// Server answers LSPS0 requests with the methods registered on it.
// lsps0.list_protocols is built in. Safe for concurrent use.
type Server struct {
	log     *slog.Logger
	clock   clock.Clock
	limits  Limits
	metrics *Metrics

	mu        sync.RWMutex
	methods   map[string]Handler
	protocols []int
}

// Option configures a Server.
type Option func(*Server)

// WithLimits sets Run's per-peer limits; zero fields keep their defaults
// (see Limits).
func WithLimits(l Limits) Option {
	return func(s *Server) { s.limits = l.withDefaults() }
}

// WithClock sets the clock of Run's rate limits, backoff and log
// throttling. Default: the wall clock.
func WithClock(c clock.Clock) Option {
	return func(s *Server) { s.clock = c }
}

// WithMetrics sets where the Server counts requests and drops. Default:
// metrics registered nowhere.
func WithMetrics(m *Metrics) Option {
	return func(s *Server) { s.metrics = m }
}

// NewServer returns a Server with no methods but lsps0.list_protocols.
func NewServer(log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		log:     log.With("component", "lsps0"),
		clock:   clock.NewDefaultClock(),
		limits:  Limits{}.withDefaults(),
		methods: map[string]Handler{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics, _ = NewMetrics(nil) // registers nothing: cannot fail
	}
	s.methods[methodListProtocols] = s.listProtocols
	return s
}

const methodListProtocols = "lsps0.list_protocols"

// Handle registers h for method. protocol is the LSPS number the method
// belongs to, listed by lsps0.list_protocols; 0 for a method of our own
// that no LSPS number names (0 is never listed: 50:581-582).
func (s *Server) Handle(protocol int, method string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[method]; dup {
		panic("lsps0: method registered twice: " + method)
	}
	s.methods[method] = h
	s.metrics.registered(method)
	if protocol > 0 && !slices.Contains(s.protocols, protocol) {
		s.protocols = append(s.protocols, protocol)
		slices.Sort(s.protocols)
	}
}

// handler returns the handler of method, nil if none is registered.
func (s *Server) handler(method string) Handler {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.methods[method]
}

// ListProtocolsResult is lsps0.list_protocols' result (50:567-583).
type ListProtocolsResult struct {
	Protocols []int `json:"protocols"`
}

// listProtocols: 50:566-567 "`lsps0.list_protocols`, which accepts no
// parameters `{}`"; 50:581-582 "0 MUST NOT appear in the `protocols`
// array" (Handle never adds it).
func (s *Server) listProtocols(_ context.Context, _ onionmsg.NodeKey, params json.RawMessage) (any, error) {
	if err := DecodeParams(params, &struct{}{}); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return ListProtocolsResult{Protocols: append([]int{}, s.protocols...)}, nil
}

// request is a JSON-RPC 2.0 request as LSPS0 allows it.
type request struct {
	ID     json.RawMessage // a JSON string, as received
	Method string
	Params json.RawMessage // absent, null or an object
}

// response is a JSON-RPC 2.0 response: exactly one of Result and Error.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

// MaxIDSize bounds a request's id, in bytes of its JSON text. Any response
// echoes the id, so a bounded id keeps every error response well within
// MaxMessageSize. Ids are high-entropy strings such as UUIDs (50:488-491);
// a longer one is refused like a bad message.
const MaxIDSize = 1024

// Answer handles one message from peer and returns the response to send.
// It always returns a JSON-RPC 2.0 response of at most MaxMessageSize
// bytes whose id is the request's (a JSON string) or null; null only with
// -32700, for a message that is not a request LSPS0 can answer (50:124-127).
// (An LDK client reads an error with a null id only if it is -32700: with
// another code it stops talking to the LSP.)
func (s *Server) Answer(ctx context.Context, peer onionmsg.NodeKey, raw []byte) []byte {
	resp, method, code := s.answer(ctx, peer, raw)
	s.metrics.request(method, code)
	return resp
}

// answer is Answer, also returning the method (empty if the message named
// none) and the response's error code (0 for a result), for the metrics.
func (s *Server) answer(ctx context.Context, peer onionmsg.NodeKey, raw []byte) ([]byte, string, int) {
	if len(raw) > MaxMessageSize {
		// Over BOLT8 it cannot happen (50:167-168); over HTTP it can.
		s.log.Info("message refused: too large", "peer", peer, "bytes", len(raw))
		return s.errorResponse(nullID, parseError("message of %d bytes, the most is %d",
			len(raw), MaxMessageSize)), "", CodeParseError
	}
	req, rerr := parseRequest(raw)
	if rerr != nil {
		// 50:129 "SHOULD log this as an unusual event."
		s.log.Info("bad message", "peer", peer, "code", rerr.Code, "err", rerr.Message)
		id := nullID
		method := ""
		if req != nil {
			id, method = req.ID, req.Method
		}
		return s.errorResponse(id, rerr), method, rerr.Code
	}
	h := s.handler(req.Method)
	if h == nil {
		// 50:679-681 "Respond with a -32601 "Method not found" error".
		return s.errorResponse(req.ID, Errorf(CodeMethodNotFound, "Method not found")),
			req.Method, CodeMethodNotFound
	}
	result, err := s.call(ctx, h, peer, req)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			s.log.Error("request failed", "peer", peer, "method", req.Method, "err", err)
			e = Errorf(CodeInternalError, "Internal error")
		}
		e = withUnrecognized(e)
		return s.errorResponse(req.ID, e), req.Method, e.Code
	}
	if result == nil {
		result = struct{}{}
	}
	b, err := encode(response{JSONRPC: "2.0", ID: req.ID, Result: result})
	switch {
	case err != nil:
		s.log.Error("result does not marshal", "peer", peer, "method", req.Method, "err", err)
	case len(b) > MaxMessageSize:
		// 50:167-168: a BOLT8 message carries at most 65533 bytes.
		s.log.Error("response too large, answering -32603 instead", "peer", peer,
			"method", req.Method, "bytes", len(b), "max", MaxMessageSize)
	default:
		return b, req.Method, 0
	}
	return s.errorResponse(req.ID, Errorf(CodeInternalError, "Internal error")),
		req.Method, CodeInternalError
}

// call runs h, turning a panic into an error: one bad request must not stop
// the daemon.
func (s *Server) call(ctx context.Context, h Handler, peer onionmsg.NodeKey, req *request) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "peer", peer, "method", req.Method,
				"panic", p, "stack", string(debug.Stack()))
			result, err = nil, fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return h(ctx, peer, req.Params)
}

// withUnrecognized returns e with data.unrecognized if e is a -32602 whose
// data lacks it: 50:408-410 "MUST include a `data` object", with at least
// `unrecognized` (50:412-414). e itself is not changed: it may be a
// handler's shared value.
func withUnrecognized(e *Error) *Error {
	if e.Code != CodeInvalidParams {
		return e
	}
	switch d := e.Data.(type) {
	case nil:
		c := *e
		c.Data = unrecognizedData(nil)
		return &c
	case map[string]any:
		if _, ok := d["unrecognized"]; ok {
			return e
		}
		m := make(map[string]any, len(d)+1)
		for k, v := range d {
			m[k] = v
		}
		m["unrecognized"] = []string{}
		c := *e
		c.Data = m
		return &c
	}
	return e // some other data: the handler's responsibility
}

// errorResponse marshals an error response. If it does not marshal or fit
// (a handler's Data too large or not marshalable), the error is replaced by
// -32603 without data, which always does: the id is bounded by MaxIDSize.
func (s *Server) errorResponse(id json.RawMessage, e *Error) []byte {
	b, err := encode(response{JSONRPC: "2.0", ID: id, Error: e})
	if err == nil && len(b) <= MaxMessageSize {
		return b
	}
	s.log.Error("error response does not fit, answering -32603 instead",
		"code", e.Code, "bytes", len(b), "err", err)
	b, err = encode(response{JSONRPC: "2.0", ID: id,
		Error: Errorf(CodeInternalError, "Internal error")})
	if err != nil {
		panic(fmt.Sprintf("lsps0: internal error response does not marshal: %v", err))
	}
	return b
}

// encode marshals v as compact JSON without escaping <, > and & (which
// would let an id grow sixfold when echoed).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func parseError(format string, args ...any) *Error {
	return Errorf(CodeParseError, "parse error: "+format, args...)
}

// parseRequest checks that raw is a request LSPS0 can answer.
//
// A payload that is not one JSON object, or an object without a string id,
// is a "bad message format" (50:94-114) and returns a nil request: -32700
// with a null id (50:124-127). Without a string id there is no answer the
// client could match: a notification (no id) is what a client "MUST NOT
// send" (50:194-195), and ids are strings (50:488; LDK's LSPSRequestId is a
// String and LDK answers any object it cannot read with -32700 and a null
// id).
//
// An object with a string id that is still no valid request returns the
// request with its id, so the client can match the error: -32600 if
// jsonrpc is not "2.0" or method is missing or not a string (JSON-RPC 2.0's
// Invalid Request, which 50:225 has the LSP respect); -32602 if params are
// by position or not structured (50:196-197).
func parseRequest(raw []byte) (*request, *Error) {
	// 50:109 "The payload MUST NOT contain any 0 bytes."
	if bytes.IndexByte(raw, 0) >= 0 {
		return nil, parseError("the payload contains a 0 byte")
	}
	// 50:99-100 "MUST parse as a single complete UTF-8 encoded JSON
	// object".
	if !utf8.Valid(raw) {
		return nil, parseError("the payload is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, parseError("the payload is not one JSON object")
	}
	// 50:100-102 "with optional leading or trailing whitespaces (space,
	// tab, line feed, carriage return)"; 50:105 "MUST NOT parse as more
	// than a single complete JSON object".
	if rest := bytes.TrimLeft(raw[dec.InputOffset():], " \t\n\r"); len(rest) > 0 {
		return nil, parseError("data after the JSON object")
	}

	// 50:113-114 "If the LSP, the received payload MUST parse to a JSON
	// object that is a JSON-RPC 2.0 request."
	id, ok := obj["id"]
	if !ok {
		return nil, parseError("no id: a notification or not a request")
	}
	if _, ok := jsonString(id); !ok {
		return nil, parseError("the id is not a string")
	}
	if len(id) > MaxIDSize {
		return nil, parseError("an id of %d bytes, the most is %d", len(id), MaxIDSize)
	}
	req := &request{ID: id}
	if v, ok := jsonString(obj["jsonrpc"]); !ok || v != "2.0" {
		return req, Errorf(CodeInvalidRequest, `Invalid Request: jsonrpc must be "2.0"`)
	}
	method, ok := jsonString(obj["method"])
	if !ok {
		return req, Errorf(CodeInvalidRequest, "Invalid Request: method must be a string")
	}
	req.Method = method
	req.Params = obj["params"]
	// 50:196-197 "MUST NOT use by-position parameter structures, and MUST
	// use by-name parameter structures." null counts as absent.
	if p := req.Params; len(p) > 0 && p[0] != '{' && string(p) != "null" {
		return req, InvalidParams("params must be by name (a JSON object)")
	}
	return req, nil
}

// jsonString returns the string a JSON value is, false if it is none (null
// included, which encoding/json would decode as "").
func jsonString(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}
