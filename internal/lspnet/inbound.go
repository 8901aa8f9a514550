package lspnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// Inbound is one message that arrived for this LSP.
type Inbound struct {
	// From is the sending LSP: the key in the bus subject, which NATS
	// permissions bind to the publisher, and which the envelope must be
	// signed by.
	From onionmsg.NodeKey

	// Msg is the decoded message.
	Msg onionmsg.Message

	// ID and SentAt are the envelope's.
	ID     onionmsg.MsgID
	SentAt time.Time

	// Delivered counts deliveries of a durable message (1 the first
	// time); 0 for requests.
	Delivered uint64

	check    func() error // the envelope's signature check
	started  sync.Once
	auth     chan struct{}
	authErr  error
	selfAuth bool
}

// Authentic waits for the check of the envelope's signature, which started
// when the message arrived (or starts now, for a self-authenticating type),
// and returns its result: nil, or an error that drops the message. A handler
// calls it before it commits anything.
func (in *Inbound) Authentic() error {
	in.startCheck()
	<-in.auth
	return in.authErr
}

// startCheck starts the envelope's signature check, once.
func (in *Inbound) startCheck() {
	in.started.Do(func() {
		go func() {
			if err := in.check(); err != nil {
				in.authErr = Drop(bus.ReasonBadSignature, err)
			}
			close(in.auth)
		}()
	})
}

// MessageFunc handles a durable message. It returns nil once its effect is
// committed, after which the message is acknowledged; an error wrapping
// ErrDrop drops it; any other error has it redelivered later. A redelivered
// message must change nothing.
type MessageFunc func(ctx context.Context, in *Inbound) error

// RequestFunc answers a request. An error wrapping ErrDrop answers
// "rejected"; any other error "unavailable" (the requester retries).
type RequestFunc func(ctx context.Context, in *Inbound) (onionmsg.Message, error)

// Mux routes inbound messages by type. One asynclspd running both roles
// registers both roles' handlers on one Mux.
type Mux struct {
	messages map[onionmsg.MsgType][]MessageFunc
	requests map[onionmsg.MsgType]RequestFunc

	// selfAuth marks types whose payload carries its own end-to-end
	// signature (HandleSelfAuthenticating).
	selfAuth map[onionmsg.MsgType]bool
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	return &Mux{
		messages: map[onionmsg.MsgType][]MessageFunc{},
		requests: map[onionmsg.MsgType]RequestFunc{},
		selfAuth: map[onionmsg.MsgType]bool{},
	}
}

// HandleMessage routes durable messages of type t to f, after any handler
// registered before it that returns ErrNotMine.
func (m *Mux) HandleMessage(t onionmsg.MsgType, f MessageFunc) {
	m.messages[t] = append(m.messages[t], f)
}

// HandleSelfAuthenticating routes durable messages of type t to f, for
// payloads that carry their own end-to-end signature and are safe to act on
// whoever relayed them (a release, signed by the receiver over one hold, one
// payment hash and one sender LSP, with a secret only that sender LSP gave
// out). f need not wait for the envelope's signature check, which runs
// after it: a bad envelope still drops the message and counts it, before it
// is acknowledged. On the release hot path this saves a signature check's
// latency, and leaves the second CPU to f.
func (m *Mux) HandleSelfAuthenticating(t onionmsg.MsgType, f MessageFunc) {
	m.selfAuth[t] = true
	m.HandleMessage(t, f)
}

// HandleRequest routes requests of type t to f.
func (m *Mux) HandleRequest(t onionmsg.MsgType, f RequestFunc) { m.requests[t] = f }

// Run consumes this LSP's durable messages and serves its requests through
// mux until ctx ends, then returns nil once every handler has returned; or
// the first error of the bus, after stopping the rest.
func (n *Node) Run(ctx context.Context, mux *Mux) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1+len(mux.requests))
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	if len(mux.messages) > 0 {
		run(func() error {
			return n.t.Consume(ctx, func(ctx context.Context, m bus.Msg) error {
				return n.handleMessage(ctx, mux, m)
			})
		})
	}
	for t, f := range mux.requests {
		kind, err := kindOf(t)
		if err != nil {
			return err
		}
		run(func() error {
			return n.t.ServeRequests(ctx, kind, func(ctx context.Context,
				from bus.NodeKey, data []byte) ([]byte, error) {
				return n.handleRequest(ctx, t, f, onionmsg.NodeKey(from), data)
			})
		})
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// open decodes an envelope, checks everything that is cheap (addressee,
// sender, type), and starts the signature check, unless the payload
// authenticates itself (selfAuth): then it starts when asked for.
func (n *Node) open(from onionmsg.NodeKey, want onionmsg.MsgType, data []byte,
	selfAuth bool) (*Inbound, error) {

	env, err := onionmsg.DecodeEnvelope(data)
	if err != nil {
		return nil, Drop(bus.ReasonMalformed, err)
	}
	switch {
	case env.To != n.self:
		return nil, Drop(bus.ReasonMisdirected, fmt.Errorf("envelope for %s", env.To))
	case env.From != from:
		return nil, Drop(bus.ReasonBadSignature,
			fmt.Errorf("envelope from %s arrived from %s", env.From, from))
	case env.Type != want:
		return nil, Drop(bus.ReasonMalformed,
			fmt.Errorf("envelope carries type %d on the subject of type %d", env.Type, want))
	}
	msg, err := env.Message()
	if err != nil {
		return nil, Drop(bus.ReasonMalformed, err)
	}
	now := n.clock.Now()
	in := &Inbound{From: from, Msg: msg, ID: env.ID, SentAt: env.SentAt,
		selfAuth: selfAuth, auth: make(chan struct{}),
		check: func() error {
			return onionmsg.VerifyEnvelope(env, onionmsg.EnvelopeExpect{
				From: from, To: n.self}, now, n.skew)
		}}
	if !selfAuth {
		in.startCheck()
	}
	return in, nil
}

// settle makes sure a handler that succeeded also saw a valid signature, and
// waits for the check to end so no goroutine outlives the message.
func (n *Node) settle(in *Inbound, err error) error {
	authErr := in.Authentic()
	switch {
	case err == nil && authErr != nil && in.selfAuth:
		// Acted on by its own signature; the envelope is still refused.
		n.log.Warn("dropping a message whose envelope failed its "+
			"signature check", "from", in.From, "type", in.Msg.MsgType(),
			"err", authErr)
		return authErr
	case err == nil && authErr != nil:
		// A handler committed without asking: a bug, never silent.
		n.log.Error("handler accepted a message whose envelope failed "+
			"its signature check", "from", in.From, "type", in.Msg.MsgType(),
			"err", authErr)
		return authErr
	}
	return err
}

func (n *Node) handleMessage(ctx context.Context, mux *Mux, m bus.Msg) error {
	var want onionmsg.MsgType
	for t, k := range kinds {
		if k == m.Kind {
			want = t
		}
	}
	handlers := mux.messages[want]
	if len(handlers) == 0 {
		return Drop(bus.ReasonMisdirected, fmt.Errorf("no handler for %s", m.Kind))
	}
	in, err := n.open(onionmsg.NodeKey(m.From), want, m.Data, mux.selfAuth[want])
	if err != nil {
		n.log.Warn("dropping message", "from", m.From, "kind", m.Kind, "err", err)
		return err
	}
	in.Delivered = m.Delivered
	err = ErrNotMine
	for _, f := range handlers {
		if err = f(ctx, in); !errors.Is(err, ErrNotMine) {
			break
		}
	}
	if errors.Is(err, ErrNotMine) {
		err = Drop(bus.ReasonMisdirected, err)
	}
	err = n.settle(in, err)
	if errors.Is(err, ErrDrop) {
		n.log.Warn("dropping message", "from", in.From, "kind", m.Kind, "err", err)
	}
	return err
}

func (n *Node) handleRequest(ctx context.Context, t onionmsg.MsgType, f RequestFunc,
	from onionmsg.NodeKey, data []byte) ([]byte, error) {

	in, err := n.open(from, t, data, false)
	if err != nil {
		n.log.Warn("rejecting request", "from", from, "type", t, "err", err)
		return nil, err
	}
	reply, err := f(ctx, in)
	if err = n.settle(in, err); err != nil {
		return nil, err
	}
	_, out, err := n.seal(ctx, from, reply)
	return out, err
}
