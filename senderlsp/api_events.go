package senderlsp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
)

// errClientGone: writing to an event stream's client failed; it left.
var errClientGone = errors.New("event stream client gone")

// events: GET /v1/events, server-sent events of hold transitions.
//
// Each event's id is its store-wide sequence number, so a client resumes
// with Last-Event-ID (or ?after=) and gets exactly the events after it, in
// order: every committed event has a sequence number, and the stream moves
// strictly forward through them. A wallet sees its own payments' events
// only. Messages without data carry the stream's position (id:) alone: a
// wallet's position moves past other wallets' events too, so it never reads
// them again. Without a position, the stream starts at the newest event.
//
// The stream waits on Store.Changed, never polling, and ends when the
// client goes, the store fails, or Close is called.
func (a *API) events(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	after, err := a.streamStart(r)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	if !a.stream() {
		writeError(w, errShuttingDown)
		return
	}
	defer a.streamDone()

	s := &eventStream{a: a, c: c, w: w, rc: http.NewResponseController(w),
		pos: after}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The retry hint, and the position the stream starts from, so that a
	// client that sees no event before a disconnect still resumes here.
	fmt.Fprintf(&s.buf, "retry: 2000\nid: %d\n\n", after)
	s.sent = after
	if err := s.flush(); err != nil {
		return
	}

	heartbeat := a.m.clock.TickAfter(a.cfg.Heartbeat)
	beat := false
	for {
		// Take the channel before reading, so no commit falls between.
		changed := a.m.store.Changed()
		more, err := s.next(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, errClientGone) {
				a.log.Warn("event stream failed", "by", c.name, "pos", s.pos, "err", err)
			}
			return
		}
		if more {
			continue
		}
		if beat {
			// After reading, so the heartbeat's position covers every
			// event committed before it was due.
			beat = false
			if err := s.heartbeat(); err != nil {
				return
			}
		}
		select {
		case <-changed:
		case <-heartbeat:
			heartbeat = a.m.clock.TickAfter(a.cfg.Heartbeat)
			beat = true
		case <-ctx.Done():
			return
		case <-a.quit:
			return
		}
	}
}

// streamStart is the position a stream starts after: Last-Event-ID (what a
// reconnecting EventSource sends), else ?after=, else the newest event.
func (a *API) streamStart(r *http.Request) (uint64, error) {
	for name := range r.URL.Query() {
		if name != "after" {
			return 0, apiErr(codeInvalidRequest, fmt.Sprintf("unknown query parameter %q", name))
		}
	}
	last, err := a.m.store.LastSeq(r.Context())
	if err != nil {
		return 0, err
	}
	v, from := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, from = r.URL.Query().Get("after"), "after"
	}
	if v == "" {
		return last, nil
	}
	after, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, apiErr(codeInvalidRequest, from+" must be an event sequence number")
	}
	if after > last {
		// Nothing this store committed: the client saw another database,
		// or one restored from an older backup. Resuming would skip.
		return 0, apiErr(codeInvalidRequest, fmt.Sprintf(
			"%s %d is beyond the newest event, %d", from, after, last))
	}
	return after, nil
}

// eventStream is one client's stream.
type eventStream struct {
	a  *API
	c  *caller
	w  http.ResponseWriter
	rc *http.ResponseController

	buf bytes.Buffer
	// pos is the last event read from the store; sent the last position
	// the client was told.
	pos, sent uint64
}

// next reads and writes the events after pos, a batch at a time; more is
// set when the batch was full. A wallet's are read with its owner's scope,
// so other wallets' events cost it no lookup.
func (s *eventStream) next(ctx context.Context) (more bool, err error) {
	a := s.a
	var (
		evs  []holdstore.Event
		read = s.pos
	)
	if s.c.admin() {
		evs, err = a.m.store.Events(ctx, s.pos, a.cfg.EventBatch)
		if len(evs) > 0 {
			read = evs[len(evs)-1].Seq
		}
	} else {
		evs, read, err = a.m.store.OwnedEvents(ctx, s.c.name, s.pos, a.cfg.EventBatch)
	}
	if err != nil {
		return false, err
	}
	for i := range evs {
		data, err := json.Marshal(toEventJSON(&evs[i]))
		if err != nil {
			return false, err
		}
		fmt.Fprintf(&s.buf, "id: %d\nevent: transition\ndata: %s\n\n", evs[i].Seq, data)
		s.sent = evs[i].Seq
	}
	s.pos = max(s.pos, read)
	if s.buf.Len() > 0 {
		if err := s.flush(); err != nil {
			return false, err
		}
	}
	return len(evs) == a.cfg.EventBatch, nil
}

// heartbeat writes a comment line, with the position if it moved past
// events the caller does not see.
func (s *eventStream) heartbeat() error {
	s.buf.WriteString(": heartbeat\n")
	if s.pos != s.sent {
		fmt.Fprintf(&s.buf, "id: %d\n", s.pos)
		s.sent = s.pos
	}
	s.buf.WriteString("\n")
	return s.flush()
}

// flush writes the buffer to the client, within StreamWriteTimeout.
func (s *eventStream) flush() error {
	// A socket deadline is real time, whatever clock the logic runs on.
	err := s.rc.SetWriteDeadline(time.Now().Add(s.a.cfg.StreamWriteTimeout))
	if err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	if _, err := s.w.Write(s.buf.Bytes()); err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	s.buf.Reset()
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	return nil
}
