package lsps0

import "time"

// Defaults of Limits.
const (
	DefaultPeerRate       = 10.0
	DefaultPeerBurst      = 50
	DefaultPeerQueue      = 8
	DefaultMaxPeers       = 1024
	DefaultMaxHandlers    = 16
	DefaultHandlerTimeout = 30 * time.Second
	DefaultPeerIdle       = time.Minute
)

// Limits bound what Run spends on peers' messages. A zero field takes its
// default. Each peer's requests are handled one at a time, in order, so a
// flooding peer holds at most one of the MaxHandlers slots; what it sends
// beyond its rate or its queue is dropped without being read.
type Limits struct {
	// PeerRate is how many messages a second a peer may send on average;
	// more are dropped. Default DefaultPeerRate.
	PeerRate float64 `long:"peerrate" description:"LSPS0 messages a second one peer may send on average; more are dropped"`

	// PeerBurst is how many messages a peer may send at once, above its
	// rate. Default DefaultPeerBurst.
	PeerBurst int `long:"peerburst" description:"LSPS0 messages one peer may send at once"`

	// PeerQueue is how many of a peer's messages may wait while one of its
	// is handled; more are dropped. Default DefaultPeerQueue.
	PeerQueue int `long:"peerqueue" description:"LSPS0 messages of one peer that may wait to be handled"`

	// MaxPeers bounds the peers being served at once; messages of more
	// are dropped. Default DefaultMaxPeers.
	MaxPeers int `long:"maxpeers" description:"peers whose LSPS0 messages are served at once"`

	// MaxHandlers bounds the requests handled at once, all peers
	// together. Default DefaultMaxHandlers.
	MaxHandlers int `long:"maxhandlers" description:"LSPS0 requests handled at once"`

	// HandlerTimeout bounds the handling of one request, and then the
	// sending of its response. Default DefaultHandlerTimeout.
	HandlerTimeout time.Duration `long:"handlertimeout" description:"time to handle one LSPS0 request"`

	// PeerIdle is how long a peer's worker waits for its next message
	// before it exits. Default DefaultPeerIdle.
	PeerIdle time.Duration `long:"peeridle" description:"how long a quiet peer's LSPS0 worker lives on"`
}

// withDefaults returns l with every field that is not positive set to its
// default.
func (l Limits) withDefaults() Limits {
	if l.PeerRate <= 0 {
		l.PeerRate = DefaultPeerRate
	}
	if l.PeerBurst <= 0 {
		l.PeerBurst = DefaultPeerBurst
	}
	if l.PeerQueue <= 0 {
		l.PeerQueue = DefaultPeerQueue
	}
	if l.MaxPeers <= 0 {
		l.MaxPeers = DefaultMaxPeers
	}
	if l.MaxHandlers <= 0 {
		l.MaxHandlers = DefaultMaxHandlers
	}
	if l.HandlerTimeout <= 0 {
		l.HandlerTimeout = DefaultHandlerTimeout
	}
	if l.PeerIdle <= 0 {
		l.PeerIdle = DefaultPeerIdle
	}
	return l
}
