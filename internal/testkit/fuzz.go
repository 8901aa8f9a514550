package testkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"
	"time"
)

// What the fuzz targets of the HTTP APIs share: a request built from fuzzed
// parts as net/http's server would parse it off the wire, served to the real
// handler in process, and the checks of the JSON error every API answers.
// Their seed corpora are fuzzcorpus'.

// FuzzRequest parses method, target (the request-target: path and query),
// the header lines (one per line, "Name: value") and body as net/http's
// server parses a request off the wire; false if it would answer 400 itself
// and never call a handler. Auth, if set, is sent as an Authorization:
// Bearer header before the fuzzed ones.
func FuzzRequest(method, target, auth, header string, body []byte) (*http.Request, bool) {
	if strings.ContainsAny(method+target, "\r\n") || target == "*" {
		// No request line carries CR or LF; net/http answers OPTIONS *
		// itself, and its ServeMux any other method on *.
		return nil, false
	}
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: lsp.test\r\n", method, target)
	if auth != "" {
		fmt.Fprintf(&raw, "Authorization: Bearer %s\r\n", auth)
	}
	for _, line := range strings.Split(header, "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			raw.WriteString(line + "\r\n")
		}
	}
	fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n", len(body))
	raw.Write(body)
	req, err := http.ReadRequest(bufio.NewReader(&raw))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "192.0.2.1:4242"
	return req, true
}

// FuzzPatience is how long the fuzz targets of the HTTP APIs wait for an
// answer: a thousand times what any takes. One that takes longer is a hang,
// which Go's fuzzer does not report by itself (it stops a hung worker at
// -fuzztime, and passes).
const FuzzPatience = 5 * time.Second

// streamRecorder is a client that reads a response until its first flush,
// then leaves: an event stream shows its status and first message, and
// its handler returns.
type streamRecorder struct {
	*httptest.ResponseRecorder
	once  sync.Once
	leave func()
}

func (s *streamRecorder) Flush() {
	s.ResponseRecorder.Flush()
	s.once.Do(s.leave)
}

// ServeFuzz serves req with h as a client that waits patience for the
// answer (and leaves after the first flush of a stream). It returns what
// was answered, and whether the client left before the handler returned
// (a long-poll): nobody reads that answer. A handler that does not return
// within 10 seconds of its client leaving fails the test.
func ServeFuzz(t testing.TB, h http.Handler, req *http.Request, patience time.Duration) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	ctx, leave := context.WithCancel(req.Context())
	defer leave()
	rec := &streamRecorder{ResponseRecorder: httptest.NewRecorder(), leave: leave}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, req.WithContext(ctx))
	}()
	timer := time.NewTimer(patience)
	defer timer.Stop()
	select {
	case <-done:
		return rec.ResponseRecorder, false
	case <-timer.C:
	}
	leave()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s %s: the handler did not return 10s after its client left",
			req.Method, req.URL)
	}
	return rec.ResponseRecorder, true
}

// MuxRedirect reports whether rec is ServeMux's redirect of a path that is
// not clean (//x, /a/../x) to its clean form: net/http's answer, which no
// route of the API saw.
func MuxRedirect(rec *httptest.ResponseRecorder, req *http.Request) bool {
	switch rec.Code {
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return false
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || loc.Path == "" || loc.Path == req.URL.Path {
		return false
	}
	clean := path.Clean(loc.Path)
	if strings.HasSuffix(loc.Path, "/") && clean != "/" {
		clean += "/" // cleaning keeps a trailing slash
	}
	return loc.Path == clean
}

// ErrorBody checks that rec is the JSON error every API here answers,
// {"error": {"code": ..., "message": ...}} and nothing else, with a code
// and a message, and returns them.
func ErrorBody(t testing.TB, rec *httptest.ResponseRecorder) (code, message string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d with Content-Type %q: %q", rec.Code, ct, rec.Body)
	}
	var body struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error == nil ||
		body.Error.Code == "" || body.Error.Message == "" || dec.More() {

		t.Fatalf("status %d: not an error body (%v): %q", rec.Code, err, rec.Body)
	}
	return body.Error.Code, body.Error.Message
}
