package lsps0

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// CodeUnauthorized answers an HTTP request that auth refused. It is in the
// range JSON-RPC 2.0 reserves for implementation-defined server errors,
// which clients treat as -32603 (50:479-481).
const CodeUnauthorized = -32001

// HTTPHandler serves the same methods over HTTP, for backends that do not
// hold the node's connection to the peer: a POST whose body is one
// JSON-RPC request (at most MaxMessageSize bytes), from the peer auth
// names. The answer is Answer's, with HTTP 200 also for JSON-RPC errors,
// as JSON-RPC over HTTP does. auth failing answers HTTP 401 with a
// CodeUnauthorized error and a null id, without reading the body; a body
// over MaxMessageSize, HTTP 413 with -32700; another method than POST, 405.
// Run's per-peer limits do not apply here: auth is the gate.
func (s *Server) HTTPHandler(auth func(*http.Request) (onionmsg.NodeKey, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "LSPS0 over HTTP takes POST", http.StatusMethodNotAllowed)
			return
		}
		peer, err := auth(r)
		if err != nil {
			s.log.Info("LSPS0 over HTTP: unauthorized", "remote", r.RemoteAddr, "err", err)
			writeJSON(w, http.StatusUnauthorized,
				s.errorResponse(nullID, Errorf(CodeUnauthorized, "Unauthorized")))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxMessageSize))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if !errors.As(err, &tooLarge) {
				s.log.Info("LSPS0 over HTTP: reading the body failed", "peer", peer, "err", err)
				return // the client is gone
			}
			s.metrics.request("", CodeParseError)
			s.log.Info("LSPS0 over HTTP: message refused: too large", "peer", peer)
			writeJSON(w, http.StatusRequestEntityTooLarge, s.errorResponse(nullID,
				parseError("a message of more than %d bytes", MaxMessageSize)))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.limits.HandlerTimeout)
		defer cancel()
		writeJSON(w, http.StatusOK, s.Answer(ctx, peer, body))
	})
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
