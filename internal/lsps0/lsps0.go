// Package lsps0 is the LSPS0 transport (bLIP-50): JSON-RPC 2.0 requests from
// a Lightning peer, one per BOLT8 message of type 37913, answered over the
// same connection. The peer's node id, authenticated by BOLT8, is the
// caller. The receiver role registers its methods (lsps5.* and asynclsp.*)
// on a Server; the daemon feeds the Server from its lnd's custom messages,
// and from an HTTP endpoint for backends that do not hold the node's
// connection.
//
// Floor: ground. Owns the JSON-RPC framing, its error codes and the
// per-peer limits; it imports only the ground floor (onionmsg), never a
// role.
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

// DecodeParams decodes a request's by-name params into v, a pointer to a
// struct. Absent or null params count as {}. Fields v does not know are
// refused with -32602 and data.unrecognized naming them (50:675-680); a
// field of the wrong type, with -32602 naming the field. Checking required
// fields and values is the handler's.
func DecodeParams(params json.RawMessage, v any) error {
	params = bytes.TrimSpace(params)
	if len(params) == 0 || bytes.Equal(params, []byte("null")) {
		params = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(params, &fields); err != nil || fields == nil {
		return Errorf(CodeInvalidParams, "params must be a JSON object")
	}
	known := fieldNames(v)
	var unknown []string
	for name := range fields {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return &Error{
			Code:    CodeInvalidParams,
			Message: "unrecognized params: " + strings.Join(unknown, ", "),
			Data:    map[string]any{"unrecognized": unknown},
		}
	}
	if err := json.Unmarshal(params, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Errorf(CodeInvalidParams, "param %s: want a JSON %s",
				te.Field, jsonKind(te.Type))
		}
		return Errorf(CodeInvalidParams, "params: %v", err)
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
