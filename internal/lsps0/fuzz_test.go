package lsps0

import (
	"context"
	"testing"
)

// FuzzAnswer: anything a peer sends is answered without a panic by one
// valid JSON-RPC 2.0 response (checkResponse: at most MaxMessageSize bytes,
// "jsonrpc": "2.0", exactly one of result and error, the request's string
// id or null, null only with -32700, -32602 with data.unrecognized). The
// server has an echo method, so parsed params also travel back out. The
// seeds are in testdata/fuzz/FuzzAnswer.
func FuzzAnswer(f *testing.F) {
	s := testServer(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		resp := s.Answer(context.Background(), testKey(1), payload)
		checkResponse(t, payload, resp)
	})
}
