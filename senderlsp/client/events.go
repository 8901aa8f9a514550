package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Event is one change of a payment's state.
type Event struct {
	// Seq is the event's place in the LSP's event log: increasing, and
	// what Events resumes after. Persist the last one handled.
	Seq       uint64 `json:"seq"`
	PaymentID string `json:"payment_id"`

	// From is empty on the event that creates the payment.
	From   State  `json:"from"`
	State  State  `json:"state"`
	Reason string `json:"reason"`

	// Final is set on the one event that settles or cancels the
	// payment: every payment gets exactly one.
	Final bool      `json:"final"`
	At    time.Time `json:"at"`
}

// maxEventLine caps one line of the stream.
const maxEventLine = 1 << 20

// Events yields the events after seq after (0: from the first), in order,
// as they happen: a wallet token's own payments', an admin token's all. A
// lost connection is made again after ReconnectWait (doubling while it
// keeps failing), resuming after the last event seen, so nothing is missed
// or repeated. It stops when ctx ends (yielding ctx's error) or when the
// API refuses the stream (yielding an *Error: a bad token, or a position
// beyond the LSP's newest event).
func (c *Client) Events(ctx context.Context, after uint64) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		pos := after
		failures := 0
		for {
			delivered, stop, err := c.stream(ctx, &pos, yield)
			if stop {
				return
			}
			if ctx.Err() != nil {
				yield(Event{}, ctx.Err())
				return
			}
			var apiErr *Error
			if errors.As(err, &apiErr) && !apiErr.Temporary() {
				yield(Event{}, err)
				return
			}
			if delivered {
				failures = 0
			}
			wait := c.cfg.ReconnectWait << min(failures, 16)
			wait = min(wait, c.cfg.MaxReconnectWait)
			failures++
			c.log.Warn("event stream lost, reconnecting", "after", pos,
				"wait", wait, "err", err)
			select {
			case <-c.cfg.Clock.TickAfter(wait):
			case <-ctx.Done():
				yield(Event{}, ctx.Err())
				return
			}
		}
	}
}

// stream reads one connection of the event stream, moving pos along.
// delivered: an event was yielded; stop: the consumer stopped.
func (c *Client) stream(ctx context.Context, pos *uint64,
	yield func(Event, error) bool) (delivered, stop bool, err error) {

	u := c.url("/v1/events", url.Values{"after": {strconv.FormatUint(*pos, 10)}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, false, err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(*pos, 10))
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, false, readError(resp)
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	var msg sseMessage
	for sc.Scan() {
		if !msg.line(sc.Bytes()) {
			continue
		}
		ev, isEvent, err := msg.dispatch(pos)
		msg = sseMessage{}
		if err != nil {
			return delivered, false, err
		}
		if !isEvent {
			continue
		}
		delivered = true
		if !yield(ev, nil) {
			return delivered, true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return delivered, false, err
	}
	return delivered, false, io.ErrUnexpectedEOF
}

// sseMessage gathers the fields of one server-sent message.
type sseMessage struct {
	id, event string
	hasID     bool
	data      []byte
	hasData   bool
}

// line adds one line to the message; true when a blank line ends it.
func (m *sseMessage) line(l []byte) bool {
	if len(l) == 0 {
		return true
	}
	if l[0] == ':' {
		return false // a comment: the heartbeat
	}
	field, value, _ := bytes.Cut(l, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(field) {
	case "id":
		m.id, m.hasID = string(value), true
	case "event":
		m.event = string(value)
	case "data":
		if m.hasData {
			m.data = append(m.data, '\n')
		}
		m.data, m.hasData = append(m.data, value...), true
	}
	return false
}

// dispatch ends the message: its id moves pos; its data, if it is a
// transition, is the event.
func (m *sseMessage) dispatch(pos *uint64) (Event, bool, error) {
	if m.hasID {
		seq, err := strconv.ParseUint(m.id, 10, 64)
		if err != nil {
			return Event{}, false, fmt.Errorf("event stream: bad id %q", m.id)
		}
		*pos = seq
	}
	if !m.hasData || (m.event != "" && m.event != "transition") {
		return Event{}, false, nil
	}
	var ev Event
	if err := json.Unmarshal(m.data, &ev); err != nil {
		return Event{}, false, fmt.Errorf("event stream: %w", err)
	}
	if !m.hasID {
		*pos = ev.Seq
	}
	return ev, true, nil
}
