package lnd

import (
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// ChannelHTLC is an HTLC pending on an open channel.
type ChannelHTLC struct {
	// Incoming is true for an HTLC the peer offered us.
	Incoming bool

	// Hash is the HTLC's payment hash.
	Hash lntypes.Hash

	// AmountMsat is the HTLC's amount (lnd reports whole satoshis).
	AmountMsat lnwire.MilliSatoshi

	// ExpiryHeight is the HTLC's absolute CLTV expiry.
	ExpiryHeight uint32
}

// PendingChannels are a node's channels that are not open yet or not
// closed yet.
type PendingChannels struct {
	// Opening wait for their funding transaction to confirm.
	Opening []PendingChannel

	// WaitingClose have a closing transaction, cooperative or forced,
	// that is not confirmed yet.
	WaitingClose []PendingChannel

	// ForceClosing were closed by force; their funds are still locked.
	ForceClosing []PendingChannel
}

// PendingChannel is a channel being opened or closed.
type PendingChannel struct {
	// ChannelPoint is the funding outpoint, "txid:index".
	ChannelPoint string

	// RemotePubKey is the peer's node key.
	RemotePubKey route.Vertex

	// Capacity and LocalBalance are in satoshis.
	Capacity     int64
	LocalBalance int64

	// ClosingTxID is the closing transaction of a closing channel.
	ClosingTxID string

	// LimboBalance is what a closing channel still has to recover, in
	// satoshis.
	LimboBalance int64

	// PendingHTLCs counts the HTLC outputs a force-closed channel still
	// has to resolve on chain.
	PendingHTLCs int
}

// CloseType is how a channel was closed.
type CloseType uint8

// The ways a channel closes.
const (
	CloseUnknown CloseType = iota
	CloseCooperative
	CloseLocalForce
	CloseRemoteForce
	CloseBreach
	CloseFundingCanceled
	CloseAbandoned
)

// String returns lnd's name of the close type.
func (t CloseType) String() string {
	switch t {
	case CloseCooperative:
		return "COOPERATIVE_CLOSE"
	case CloseLocalForce:
		return "LOCAL_FORCE_CLOSE"
	case CloseRemoteForce:
		return "REMOTE_FORCE_CLOSE"
	case CloseBreach:
		return "BREACH_CLOSE"
	case CloseFundingCanceled:
		return "FUNDING_CANCELED"
	case CloseAbandoned:
		return "ABANDONED"
	default:
		return "UNKNOWN"
	}
}

// Forced reports whether the channel was closed by one side alone: a local
// or remote force close, or a breach.
func (t CloseType) Forced() bool {
	return t == CloseLocalForce || t == CloseRemoteForce || t == CloseBreach
}

// ClosedChannel is a channel that was closed.
type ClosedChannel struct {
	// ChannelPoint is the funding outpoint, "txid:index".
	ChannelPoint string

	// ChanID is the short channel id.
	ChanID uint64

	// RemotePubKey is the peer's node key.
	RemotePubKey route.Vertex

	// Capacity and SettledBalance (what came back to us) are in
	// satoshis.
	Capacity       int64
	SettledBalance int64

	// CloseHeight is the block the closing transaction confirmed in.
	CloseHeight uint32

	// ClosingTxHash is the closing transaction.
	ClosingTxHash string

	// CloseType is how the channel closed.
	CloseType CloseType
}
