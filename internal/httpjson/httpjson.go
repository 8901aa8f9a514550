// Package httpjson writes the JSON answers of asynclspd's HTTP APIs: the
// sender's and receiver's, the admin API and the console's.
package httpjson

import (
	"encoding/json"
	"net/http"
)

// Write answers status with v as JSON. v is encoded before anything is
// written, so a value that cannot be encoded becomes a 500 with the APIs'
// error body rather than a half-written answer. Answers are never cached:
// they carry payments' states and tokens.
func Write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
