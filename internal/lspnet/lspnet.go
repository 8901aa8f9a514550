// Package lspnet is signed LSP-to-LSP messaging: onionmsg messages sealed in
// envelopes signed by the sending LSP's node key, carried by the bus (NATS).
// Durable messages (held_htlc_available, release_held_htlc, hold_outcome)
// travel through JetStream and are acknowledged only after their handler has
// committed; requests (invoice_request) use request/reply.
//
// Every inbound envelope must come from the LSP named in its bus subject
// (which NATS permissions bind to the publisher's credentials), be addressed
// to this LSP, and carry a valid signature. The signature check starts as
// soon as a message arrives and runs beside its handler, which waits for it
// (Inbound.Authentic) before it commits anything. A release, which carries
// the receiver's own signature, is handled first and its envelope checked
// after (Mux.HandleSelfAuthenticating), before it is acknowledged.
//
// Floor: ground. Owns envelopes on the wire between LSPs; it imports only
// the ground floor (bus, onionmsg), never a role.
package lspnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// ErrDrop, wrapped in a handler's error, says the message can never be
// handled (malformed, forged, misdirected): it is terminated and counted
// instead of redelivered. Build such errors with Drop.
var ErrDrop = bus.ErrDrop

// ErrNotMine, from a message handler, says the message is not for this
// handler: the Mux tries the next one registered for the type. One that no
// handler claims is dropped as misdirected. Both roles of one daemon hear
// hold_outcome this way: the receiver role about holds it relayed, the
// sender role about holds a receiver LSP refused.
var ErrNotMine = errors.New("lspnet: not this handler's message")

// Drop builds an error that drops the message, with one of the bus's drop
// reasons (bus.ReasonMalformed, ...) for the counter.
func Drop(reason string, err error) error { return bus.Drop(reason, err) }

// Transport is what lspnet needs of the bus; *bus.Conn implements it.
type Transport interface {
	NodeKey() bus.NodeKey
	Publish(ctx context.Context, to bus.NodeKey, kind bus.Kind, id bus.MsgID, data []byte) error
	Consume(ctx context.Context, h bus.Handler) error
	Request(ctx context.Context, to bus.NodeKey, kind bus.Kind, data []byte) ([]byte, error)
	ServeRequests(ctx context.Context, kind bus.Kind, h bus.RequestHandler) error
}

// Config assembles a Node.
type Config struct {
	// Transport carries the envelopes; its node key is this LSP's.
	Transport Transport

	// Signer signs envelopes with this LSP's node key (lnd's signrpc in
	// the daemon).
	Signer onionmsg.Signer

	// MaxClockSkew is how far in the future an envelope may be dated.
	// Default 2 minutes.
	MaxClockSkew time.Duration

	Clock  clock.Clock
	Logger *slog.Logger
}

// Node is this LSP's end of the messaging.
type Node struct {
	t      Transport
	self   onionmsg.NodeKey
	signer onionmsg.Signer
	skew   time.Duration
	clock  clock.Clock
	log    *slog.Logger
}

// New returns a Node for the LSP whose key the transport carries.
func New(cfg Config) (*Node, error) {
	if cfg.Transport == nil || cfg.Signer == nil {
		return nil, errors.New("lspnet: transport and signer are required")
	}
	key := cfg.Transport.NodeKey()
	self, err := onionmsg.NewNodeKey(key[:])
	if err != nil {
		return nil, fmt.Errorf("lspnet: own node key: %w", err)
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = 2 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Node{
		t: cfg.Transport, self: self, signer: cfg.Signer,
		skew: cfg.MaxClockSkew, clock: cfg.Clock,
		log: cfg.Logger.With("component", "lspnet"),
	}, nil
}

// Self is this LSP's node key.
func (n *Node) Self() onionmsg.NodeKey { return n.self }

// kinds maps message types to the bus's subject kinds.
var kinds = map[onionmsg.MsgType]bus.Kind{
	onionmsg.TypeInvoiceRequest:    bus.KindInvoiceRequest,
	onionmsg.TypeHeldHTLCAvailable: bus.KindHeldHTLCAvailable,
	onionmsg.TypeReleaseHeldHTLC:   bus.KindReleaseHeldHTLC,
	onionmsg.TypeHoldOutcome:       bus.KindHoldOutcome,
}

func kindOf(t onionmsg.MsgType) (bus.Kind, error) {
	k, ok := kinds[t]
	if !ok {
		return "", fmt.Errorf("lspnet: message type %d does not travel "+
			"between LSPs on its own", t)
	}
	return k, nil
}

// seal signs m into an envelope for to and encodes it.
func (n *Node) seal(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) (onionmsg.MsgID, []byte, error) {
	var id onionmsg.MsgID
	if _, err := rand.Read(id[:]); err != nil {
		return id, nil, err
	}
	env, err := onionmsg.NewEnvelope(ctx, n.signer, n.self, to, id,
		n.clock.Now(), m)
	if err != nil {
		return id, nil, fmt.Errorf("lspnet: seal %T for %s: %w", m, to, err)
	}
	data, err := env.Encode()
	return id, data, err
}

// Send delivers m durably to the LSP to: it returns once JetStream has
// stored it. The receiver handles it at least once and idempotently.
func (n *Node) Send(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) error {
	kind, err := kindOf(m.MsgType())
	if err != nil {
		return err
	}
	id, data, err := n.seal(ctx, to, m)
	if err != nil {
		return err
	}
	return n.t.Publish(ctx, bus.NodeKey(to), kind, bus.MsgID(id), data)
}

// Request sends m to the LSP to and returns its answer, whose envelope must
// be signed by to and addressed to this LSP.
func (n *Node) Request(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) (onionmsg.Message, error) {
	kind, err := kindOf(m.MsgType())
	if err != nil {
		return nil, err
	}
	_, data, err := n.seal(ctx, to, m)
	if err != nil {
		return nil, err
	}
	resp, err := n.t.Request(ctx, bus.NodeKey(to), kind, data)
	if err != nil {
		return nil, err
	}
	env, err := onionmsg.DecodeEnvelope(resp)
	if err != nil {
		return nil, fmt.Errorf("lspnet: answer from %s: %w", to, err)
	}
	want := onionmsg.EnvelopeExpect{From: to, To: n.self}
	if err := onionmsg.VerifyEnvelope(env, want, n.clock.Now(), n.skew); err != nil {
		return nil, fmt.Errorf("lspnet: answer from %s: %w", to, err)
	}
	return env.Message()
}
