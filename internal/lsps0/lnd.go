package lsps0

import (
	"context"
	"errors"
	"fmt"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/routing/route"
)

// LndMessenger is what the lnd transport uses of *lnd.Client.
type LndMessenger interface {
	SubscribeCustomMessages(ctx context.Context, types ...uint32) (*lnd.Subscription[lnd.CustomMessage], error)
	SendCustomMessage(ctx context.Context, peer route.Vertex, msgType uint32, data []byte) error
}

// NewLndTransport returns the Transport over lnd's custom messages of type
// MessageType: lnd v0.21 passes types from 32768 up without configuration.
// Its subscription survives lnd's restarts (lnd.Client re-establishes it);
// if it ends all the same, the next Receive opens it again. Sending to a
// peer that is not connected is ErrNotConnected.
func NewLndTransport(c LndMessenger) Transport {
	return &lndTransport{c: c}
}

type lndTransport struct {
	c LndMessenger

	// sub is the open subscription, nil before the first Receive and
	// after it ended. Only Receive's goroutine touches it.
	sub *lnd.Subscription[lnd.CustomMessage]
}

func (t *lndTransport) Receive(ctx context.Context) (Message, error) {
	if t.sub == nil {
		sub, err := t.c.SubscribeCustomMessages(ctx, MessageType)
		if err != nil {
			return Message{}, err
		}
		t.sub = sub
	}
	select {
	case m, ok := <-t.sub.Updates():
		if !ok {
			err := t.sub.Err()
			t.sub = nil
			return Message{}, fmt.Errorf("lnd custom messages ended: %w", err)
		}
		return Message{Peer: onionmsg.NodeKey(m.Peer), Payload: m.Data}, nil
	case <-ctx.Done():
		// Its goroutine ends before Run returns.
		t.sub.Close()
		t.sub = nil
		return Message{}, ctx.Err()
	}
}

func (t *lndTransport) Send(ctx context.Context, peer onionmsg.NodeKey, payload []byte) error {
	err := t.c.SendCustomMessage(ctx, route.Vertex(peer), MessageType, payload)
	if errors.Is(err, lnd.ErrPeerNotConnected) {
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	}
	return err
}
