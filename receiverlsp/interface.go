package receiverlsp

import (
	"context"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// Messenger sends durable messages to other LSPs: releases and hold_outcome
// notices to sender LSPs. *lspnet.Node implements it.
type Messenger interface {
	// Send returns once the message is stored by the bus; the other LSP
	// handles it at least once.
	Send(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) error
}

// HeightSource tells the chain's current block height, against which
// mailbox deadlines in blocks are checked. The daemon's lnd adapter
// implements it.
type HeightSource interface {
	CurrentHeight(ctx context.Context) (uint32, error)
}
