package lsps0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Server answers LSPS0 requests with the methods registered on it.
// lsps0.list_protocols is built in. Safe for concurrent use.
type Server struct {
	log *slog.Logger

	mu        sync.RWMutex
	methods   map[string]Handler
	protocols []int
}

// NewServer returns a Server with no methods but lsps0.list_protocols.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log.With("component", "lsps0"), methods: map[string]Handler{}}
	s.methods["lsps0.list_protocols"] = s.listProtocols
	return s
}

// Handle registers h for method. protocol is the LSPS number the method
// belongs to, listed by lsps0.list_protocols; 0 for a method of our own
// that no LSPS number names.
func (s *Server) Handle(protocol int, method string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[method]; dup {
		panic("lsps0: method registered twice: " + method)
	}
	s.methods[method] = h
	if protocol > 0 && !slices.Contains(s.protocols, protocol) {
		s.protocols = append(s.protocols, protocol)
		slices.Sort(s.protocols)
	}
}

// ListProtocolsResult is lsps0.list_protocols' result (50:567-583).
type ListProtocolsResult struct {
	Protocols []int `json:"protocols"`
}

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
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// response is a JSON-RPC 2.0 response: exactly one of Result and Error.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

// Answer handles one message from peer and returns the response to send,
// or nil when none is owed.
func (s *Server) Answer(ctx context.Context, peer onionmsg.NodeKey, raw []byte) []byte {
	req, rerr := parseRequest(raw)
	if rerr != nil {
		return s.marshal(response{JSONRPC: "2.0", ID: req.idOrNull(), Error: rerr})
	}
	s.mu.RLock()
	h := s.methods[req.Method]
	s.mu.RUnlock()
	if h == nil {
		return s.marshal(response{JSONRPC: "2.0", ID: req.ID,
			Error: Errorf(CodeMethodNotFound, "method not found: %s", req.Method)})
	}
	result, err := h(ctx, peer, req.Params)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			s.log.Error("request failed", "peer", peer, "method", req.Method,
				"err", err)
			e = Errorf(CodeInternalError, "internal error")
		}
		return s.marshal(response{JSONRPC: "2.0", ID: req.ID, Error: e})
	}
	if result == nil {
		result = struct{}{}
	}
	return s.marshal(response{JSONRPC: "2.0", ID: req.ID, Result: result})
}

func (r *request) idOrNull() json.RawMessage {
	if r == nil || r.ID == nil {
		return nullID
	}
	return r.ID
}

// parseRequest checks raw is one JSON object that is a JSON-RPC 2.0 request
// (50:95-110). A payload that is not one JSON object is a parse error with
// a null id; a JSON object that is not a valid request is an invalid
// request, with its id when it has a usable one.
func parseRequest(raw []byte) (*request, *Error) {
	if bytes.IndexByte(raw, 0) >= 0 || !utf8.Valid(raw) {
		return nil, Errorf(CodeParseError, "parse error: not UTF-8 text without NUL")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, Errorf(CodeParseError, "parse error: not one JSON object")
	}
	if _, err := dec.Token(); err == nil || err.Error() != "EOF" {
		return nil, Errorf(CodeParseError, "parse error: more than one JSON object")
	}
	req := &request{}
	if id, ok := obj["id"]; ok && validID(id) {
		req.ID = id
	}
	if req.ID == nil {
		return req, Errorf(CodeInvalidRequest, "invalid request: id must be a string")
	}
	if v := obj["jsonrpc"]; string(v) != `"2.0"` {
		return req, Errorf(CodeInvalidRequest, `invalid request: jsonrpc must be "2.0"`)
	}
	if err := json.Unmarshal(obj["method"], &req.Method); err != nil || req.Method == "" {
		return req, Errorf(CodeInvalidRequest, "invalid request: method must be a non-empty string")
	}
	req.Params = obj["params"]
	if p := bytes.TrimSpace(req.Params); len(p) > 0 && p[0] != '{' && string(p) != "null" {
		return req, Errorf(CodeInvalidParams, "params must be by name (a JSON object)")
	}
	return req, nil
}

// validID: LSPS0 ids are JSON strings (50:320-330).
func validID(id json.RawMessage) bool {
	var s string
	return json.Unmarshal(id, &s) == nil
}

func (s *Server) marshal(r response) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("lsps0: response does not marshal: %v", err))
	}
	return b
}
