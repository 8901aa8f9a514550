package httpjson

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusCreated, map[string]int{"a": 1})
	if rec.Code != http.StatusCreated || rec.Body.String() != "{\"a\":1}\n" ||
		rec.Header().Get("Content-Type") != "application/json" ||
		rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	// What cannot be encoded is a 500 with the APIs' error body, whole.
	rec = httptest.NewRecorder()
	Write(rec, http.StatusOK, func() {})
	if rec.Code != http.StatusInternalServerError ||
		rec.Body.String() != `{"error":{"code":"internal","message":"encoding the answer failed"}}`+"\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
}
