package lnd

import (
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// NodeInfo describes the lnd node the client is connected to.
type NodeInfo struct {
	// PubKey is the node's identity key.
	PubKey route.Vertex

	// Alias is the node's alias.
	Alias string

	// Version is lnd's version string, e.g. "0.21.1-beta commit=...".
	Version string

	// BlockHeight is the height of lnd's best block.
	BlockHeight uint32

	// SyncedToChain is true once lnd's wallet has caught up with its
	// chain backend.
	SyncedToChain bool

	// SyncedToGraph is true once lnd has finished its initial graph sync.
	SyncedToGraph bool

	// ActiveChannels is the number of channels that are open and active.
	ActiveChannels uint32
}

// InvoiceState is the state of an invoice as lnd reports it.
type InvoiceState uint8

// Invoice states. A hold invoice goes OPEN -> ACCEPTED -> SETTLED, or to
// CANCELED from OPEN or ACCEPTED; a normal invoice skips ACCEPTED.
const (
	InvoiceOpen InvoiceState = iota + 1
	InvoiceAccepted
	InvoiceSettled
	InvoiceCanceled
)

// String returns lnd's name of the state.
func (s InvoiceState) String() string {
	switch s {
	case InvoiceOpen:
		return "OPEN"
	case InvoiceAccepted:
		return "ACCEPTED"
	case InvoiceSettled:
		return "SETTLED"
	case InvoiceCanceled:
		return "CANCELED"
	default:
		return "UNKNOWN"
	}
}

// IsFinal reports whether no further transition is possible.
func (s InvoiceState) IsFinal() bool {
	return s == InvoiceSettled || s == InvoiceCanceled
}

// HTLCState is the state of one HTLC paying an invoice.
type HTLCState uint8

// HTLC states on the receiving side.
const (
	HTLCAccepted HTLCState = iota + 1
	HTLCSettled
	HTLCCanceled
)

// String returns lnd's name of the state.
func (s HTLCState) String() string {
	switch s {
	case HTLCAccepted:
		return "ACCEPTED"
	case HTLCSettled:
		return "SETTLED"
	case HTLCCanceled:
		return "CANCELED"
	default:
		return "UNKNOWN"
	}
}

// Invoice is a snapshot of an invoice.
type Invoice struct {
	// Hash is the payment hash.
	Hash lntypes.Hash

	// Preimage is set once lnd knows it: always for normal invoices,
	// once settled for hold invoices.
	Preimage *lntypes.Preimage

	// PaymentRequest is the BOLT 11 invoice.
	PaymentRequest string

	// Memo is the invoice description.
	Memo string

	// ValueMsat is the requested amount; zero for an amountless invoice.
	ValueMsat lnwire.MilliSatoshi

	// AmountPaidMsat is the sum of the accepted or settled HTLCs.
	AmountPaidMsat lnwire.MilliSatoshi

	// State is the invoice's state.
	State InvoiceState

	// CreatedAt is when the invoice was added.
	CreatedAt time.Time

	// Expiry is how long after CreatedAt the invoice may be paid.
	Expiry time.Duration

	// CltvExpiry is the final CLTV delta the payer must use.
	CltvExpiry uint64

	// Private is true if the invoice carries route hints for private
	// channels.
	Private bool

	// AddIndex is lnd's index of the invoice: it grows by one with
	// every invoice added, and ListPendingInvoices pages by it.
	AddIndex uint64

	// HTLCs are the HTLCs that paid or tried to pay the invoice.
	HTLCs []InvoiceHTLC
}

// InvoiceHTLC is one HTLC paying an invoice.
type InvoiceHTLC struct {
	// ChanID is the short channel id of the incoming channel.
	ChanID uint64

	// HTLCIndex is the HTLC's index on that channel.
	HTLCIndex uint64

	// AmountMsat is the HTLC's amount.
	AmountMsat lnwire.MilliSatoshi

	// MPPTotalMsat is the total amount of the payment this HTLC is part
	// of.
	MPPTotalMsat lnwire.MilliSatoshi

	// AcceptHeight is the block height at which lnd accepted the HTLC.
	AcceptHeight uint32

	// ExpiryHeight is the HTLC's absolute CLTV expiry.
	ExpiryHeight uint32

	// State is the HTLC's state.
	State HTLCState
}

// CircuitKey names an incoming HTLC: the short channel id it arrived on
// and its index there. lnd's invoice registry and its HTLC events use the
// same key, so an HtlcEvent's circuit finds the invoice HTLC with it.
type CircuitKey struct {
	// ChanID is the short channel id of the incoming channel.
	ChanID uint64

	// HTLCIndex is the HTLC's index on that channel.
	HTLCIndex uint64
}

// Circuit returns the HTLC's incoming circuit.
func (h InvoiceHTLC) Circuit() CircuitKey {
	return CircuitKey{ChanID: h.ChanID, HTLCIndex: h.HTLCIndex}
}

// MinAcceptedExpiry returns the lowest expiry height among the accepted
// HTLCs, or 0 if none is accepted. It is the height the hold must be
// resolved before.
func (i Invoice) MinAcceptedExpiry() uint32 {
	var lowest uint32
	for _, h := range i.HTLCs {
		if h.State != HTLCAccepted {
			continue
		}
		if lowest == 0 || h.ExpiryHeight < lowest {
			lowest = h.ExpiryHeight
		}
	}

	return lowest
}

// AddedInvoice is what lnd returns for a new invoice.
type AddedInvoice struct {
	// Hash is the payment hash.
	Hash lntypes.Hash

	// PaymentRequest is the BOLT 11 invoice.
	PaymentRequest string

	// AddIndex is lnd's index of the invoice.
	AddIndex uint64
}

// PayReq is a decoded BOLT 11 invoice.
type PayReq struct {
	// Destination is the payee's node key.
	Destination route.Vertex

	// Hash is the payment hash.
	Hash lntypes.Hash

	// AmountMsat is the requested amount; zero for amountless invoices.
	AmountMsat lnwire.MilliSatoshi

	// Timestamp is when the invoice was created.
	Timestamp time.Time

	// Expiry is how long after Timestamp the invoice may be paid.
	Expiry time.Duration

	// CltvExpiry is the final CLTV delta.
	CltvExpiry uint64

	// Description is the invoice's description.
	Description string

	// RouteHints is the number of route hints the invoice carries.
	RouteHints int
}

// ExpiresAt returns when the invoice expires.
func (p PayReq) ExpiresAt() time.Time {
	return p.Timestamp.Add(p.Expiry)
}

// Channel is one of the node's open channels.
type Channel struct {
	// ChanID is the short channel id.
	ChanID uint64

	// ChannelPoint is the funding outpoint, "txid:index".
	ChannelPoint string

	// RemotePubKey is the peer's node key.
	RemotePubKey route.Vertex

	// Capacity is the channel's size in satoshis.
	Capacity int64

	// LocalBalance and RemoteBalance are the settled balances in sat.
	LocalBalance  int64
	RemoteBalance int64

	// Active is true if the peer is online and the channel usable.
	Active bool

	// Private is true for unannounced channels.
	Private bool

	// IncomingHTLCs and OutgoingHTLCs count the pending HTLCs.
	IncomingHTLCs int
	OutgoingHTLCs int

	// HTLCs are the pending HTLCs, both ways.
	HTLCs []ChannelHTLC

	// MaxIncomingHTLCs is how many HTLCs the peer may offer us at once
	// (the peer's max_accepted_htlcs as lnd applies it).
	MaxIncomingHTLCs uint32

	// MaxOutgoingHTLCs is how many HTLCs we may offer the peer at once.
	MaxOutgoingHTLCs uint32
}

// PendingHTLCs returns the number of HTLCs in flight on the channel.
func (c Channel) PendingHTLCs() int {
	return c.IncomingHTLCs + c.OutgoingHTLCs
}

// FreeIncomingSlots returns how many more HTLCs the peer may offer us.
func (c Channel) FreeIncomingSlots() int {
	return max(int(c.MaxIncomingHTLCs)-c.IncomingHTLCs, 0)
}

// FreeOutgoingSlots returns how many more HTLCs we may offer the peer.
func (c Channel) FreeOutgoingSlots() int {
	return max(int(c.MaxOutgoingHTLCs)-c.OutgoingHTLCs, 0)
}

// ChannelBalance sums the balances of the node's channels.
type ChannelBalance struct {
	// LocalMsat and RemoteMsat are the settled balances of open
	// channels.
	LocalMsat  lnwire.MilliSatoshi
	RemoteMsat lnwire.MilliSatoshi

	// UnsettledLocalMsat and UnsettledRemoteMsat are in pending HTLCs.
	UnsettledLocalMsat  lnwire.MilliSatoshi
	UnsettledRemoteMsat lnwire.MilliSatoshi

	// PendingOpenLocalMsat is our balance in channels not open yet.
	PendingOpenLocalMsat lnwire.MilliSatoshi
}
