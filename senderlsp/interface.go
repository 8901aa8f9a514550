package senderlsp

import (
	"context"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// Lnd is what the sender role asks of its lnd. The daemon passes the
// internal/lnd adapter; state-machine tests pass testkit's fake.
type Lnd interface {
	// CurrentHeight and SubscribeBlocks drive block deadlines.
	CurrentHeight(ctx context.Context) (uint32, error)
	SubscribeBlocks(ctx context.Context) (*lnd.Subscription[uint32], error)

	// The hold invoice on the receiver's payment hash.
	AddHoldInvoice(ctx context.Context, req lnd.HoldInvoiceRequest) (lnd.AddedInvoice, error)
	SubscribeSingleInvoice(ctx context.Context, hash lntypes.Hash) (*lnd.Subscription[lnd.Invoice], error)
	LookupInvoice(ctx context.Context, hash lntypes.Hash) (lnd.Invoice, error)
	SettleInvoice(ctx context.Context, preimage lntypes.Preimage) error
	CancelInvoice(ctx context.Context, hash lntypes.Hash) error

	// The receiver's invoice, and the outbound payment of it.
	DecodePayReq(ctx context.Context, payReq string) (lnd.PayReq, error)
	SendPayment(ctx context.Context, req lnd.SendPaymentRequest) (*lnd.Subscription[lnd.Payment], error)
	TrackPayment(ctx context.Context, hash lntypes.Hash) (*lnd.Subscription[lnd.Payment], error)

	// One stream of the node's HTLC events, and its pending invoices a
	// page at a time: how parked holds learn that lnd failed their HTLCs
	// back, without a stream each.
	SubscribeHtlcEvents(ctx context.Context) (*lnd.Subscription[lnd.HtlcEvent], error)
	ListPendingInvoices(ctx context.Context, afterAddIndex uint64, limit uint32) ([]lnd.Invoice, error)

	// Channels, to refuse holds that could not be forwarded, and to tell
	// an outbound payment lnd keeps in flight with no HTLC left.
	ListChannels(ctx context.Context) ([]lnd.Channel, error)
	PendingChannels(ctx context.Context) (lnd.PendingChannels, error)

	// ConnectedPeers tells a channel whose peer is away from one whose
	// link failed (Manager.checkLingering).
	ConnectedPeers(ctx context.Context) ([]route.Vertex, error)
}

// Messenger carries messages to receiver LSPs; *lspnet.Node implements it.
type Messenger interface {
	Self() onionmsg.NodeKey
	Send(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) error
	Request(ctx context.Context, to onionmsg.NodeKey, m onionmsg.Message) (onionmsg.Message, error)
}
