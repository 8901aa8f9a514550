package testkit

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Sent is one message an Outbox was given.
type Sent struct {
	To  onionmsg.NodeKey
	Msg onionmsg.Message
}

// Outbox stands in for the bus where a role sends durable messages: it
// records them, or fails while Fail is set.
type Outbox struct {
	mu   sync.Mutex
	sent []Sent
	fail error
}

// Send records m, or returns the error set with Fail.
func (o *Outbox) Send(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return o.fail
	}
	o.sent = append(o.sent, Sent{To: to, Msg: m})
	return nil
}

// Fail makes every Send fail with err until Fail(nil).
func (o *Outbox) Fail(err error) {
	o.mu.Lock()
	o.fail = err
	o.mu.Unlock()
}

// Sent returns what was sent so far.
func (o *Outbox) Sent() []Sent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Sent(nil), o.sent...)
}

// Height is a block height source the test sets.
type Height struct{ h atomic.Uint32 }

// Set sets the height.
func (h *Height) Set(height uint32) { h.h.Store(height) }

// CurrentHeight returns the height last set.
func (h *Height) CurrentHeight(context.Context) (uint32, error) { return h.h.Load(), nil }
