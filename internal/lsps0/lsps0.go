// Package lsps0 is the LSPS0 transport (bLIP-50): JSON-RPC 2.0 requests from
// a Lightning peer, one per BOLT8 message of type 37913, answered over the
// same connection. The peer's node id, authenticated by BOLT8, is the
// caller. The receiver role registers its methods (lsps5.* and asynclsp.*)
// on a Server; the daemon feeds the Server from its lnd's custom messages
// (Run with NewLndTransport), and from an HTTP endpoint for backends that do
// not hold the node's connection (HTTPHandler).
//
// # Answers
//
// Answer always returns one JSON-RPC 2.0 response of at most
// MaxMessageSize bytes:
//
//	not one JSON object (NUL, not UTF-8, trailing data,
//	an array, empty), or no string id (a notification,
//	a numeric or null id), or an id over MaxIDSize     -32700, "id": null (50:94-127)
//	jsonrpc not "2.0", method missing or not a string   -32600, the request's id
//	params by position or not an object                 -32602 (50:196-197)
//	a method nobody registered                           -32601 (50:679-681)
//	params a method does not know                        -32602, data.unrecognized (50:406-450)
//	a handler's *Error                                   its code, message and data
//	any other handler error, a panic, a result that does
//	not marshal or a response over MaxMessageSize        -32603, the detail logged
//
// A null id comes only with -32700: an LDK client reads an error with a
// null id only if it is -32700, and with any other code stops talking to
// the LSP. Every -32602 carries data.unrecognized (50:408-416).
//
// # Limits
//
// Run handles each peer's requests one at a time, in order, from a small
// queue; a token bucket per peer, a bound on the peers served at once and
// on the requests handled at once (Limits) keep a peer that floods 37913
// from delaying anyone else. What is over a limit is dropped unread,
// counted in asynclsp_lsps0_dropped_total and logged at most once a minute
// per peer. HTTPHandler leaves the gate to its auth function.
//
// Floor: ground. Owns the JSON-RPC framing, its error codes and the
// per-peer limits; it imports only the ground floor (onionmsg, and
// internal/lnd for the lnd transport), never a role.
package lsps0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// MessageType is the BOLT8 message type that carries LSPS0 (50:65).
const MessageType = 37913

// MaxMessageSize is the largest payload of one message (50:90): a BOLT8
// message is at most 65535 bytes, two of them the type.
const MaxMessageSize = 65533

// The JSON-RPC 2.0 error codes LSPS0 uses (50:125-128, 406-420).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error is a JSON-RPC 2.0 error object. A Handler returns one to answer with
// its code; any other error is answered as -32603 and its detail only
// logged.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("lsps0 error %d: %s", e.Code, e.Message)
}

// Errorf returns an Error with code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Handler answers one request from an authenticated peer: a result to
// marshal as the response's result, or an error (see Error).
type Handler func(ctx context.Context, peer onionmsg.NodeKey, params json.RawMessage) (any, error)

// InvalidParams returns a -32602 error for params that are all recognized
// but wrong (a missing field, a value out of range): its data names no
// unrecognized param, as every -32602 must carry data.unrecognized
// (50:408-416).
func InvalidParams(format string, args ...any) *Error {
	return &Error{
		Code:    CodeInvalidParams,
		Message: "Invalid params: " + fmt.Sprintf(format, args...),
		Data:    unrecognizedData(nil),
	}
}

// unrecognizedData is the data of a -32602 error (50:412-416):
// {"unrecognized": [names...]}, never null.
func unrecognizedData(names []string) map[string]any {
	if names == nil {
		names = []string{}
	}
	return map[string]any{"unrecognized": names}
}

// DecodeParams decodes a request's by-name params into v, a pointer to a
// struct. Absent or null params count as {}. Fields v does not know are
// refused with -32602, message "Invalid params" and data.unrecognized
// naming them, as in the example of 50:436-450 (and 50:675-678); a field
// of the wrong type, with -32602 naming the field in the message and an
// empty data.unrecognized (see InvalidParams). Checking required fields and
// values is the handler's.
func DecodeParams(params json.RawMessage, v any) error {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(params, &fields); err != nil || fields == nil {
		return InvalidParams("params must be a JSON object")
	}
	// Names are matched exactly: encoding/json would also take "App_Name"
	// for "app_name", which LSPS names do not allow.
	known := fieldNames(v)
	var unknown []string
	for name := range fields {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		// 50:438-450: {"code": -32602, "message": "Invalid params",
		// "data": {"unrecognized": ["future_feature1_param"]}}
		return &Error{
			Code:    CodeInvalidParams,
			Message: "Invalid params",
			Data:    unrecognizedData(unknown),
		}
	}
	if err := json.Unmarshal(params, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return InvalidParams("param %s: want a JSON %s",
				te.Field, jsonKind(te.Type))
		}
		return InvalidParams("%v", err)
	}
	return nil
}

// fieldNames returns the JSON names of the fields of the struct v points to.
func fieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := map[string]bool{}
	if t.Kind() != reflect.Struct {
		return names
	}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	default:
		return "number"
	}
}
