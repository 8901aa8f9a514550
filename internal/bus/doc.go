// Package bus carries asynclsp messages between LSPs over NATS.
//
// Two kinds of traffic:
//
//   - Durable messages (held_htlc_available, release_held_htlc,
//     hold_outcome) go through JetStream. Conn.Publish returns once the
//     receiver's inbound stream has stored the message (on disk: the
//     embedded server fsyncs every write). Conn.Consume hands them to a
//     handler and acknowledges a message only after the handler returned
//     nil, that is after its effect is committed to SQLite; a handler error
//     has it redelivered after a backoff, an error wrapping ErrDrop
//     terminates it and counts it. Delivery is at least once: handlers are
//     idempotent, SQLite is the source of truth.
//   - Requests (invoice_request) use core NATS request/reply: Conn.Request
//     and Conn.ServeRequests. Not durable; the requester retries.
//
// Inbound work is shared out per peer (the sending LSP, Msg.From), so that
// one peer's flood, or its slow messages, delays only that peer: Consume's
// pull loop only dispatches, and each active peer has a worker of its own
// that handles its messages one at a time, in arrival order, from a
// bounded queue (ClientConfig.PeerQueue, 16), up to MaxPeers (64) peers at
// once; a worker exits after PeerIdle (1m) without work. A message that
// does not fit its peer's share, because the queue is full, the peer is
// over its token bucket (PeerRate 200/s, PeerBurst 500) or MaxPeers others
// are being served, is naked at once, never held: it comes back after the
// longer of a growing delay (HandBack: 1s doubling to 1m, jittered) and the
// next free slot of the peer's pace, so a flood is redelivered spread over
// the time its own share needs for it. BlockedPeers are cut off: their
// messages are terminated and counted, their requests rejected. Nothing
// is acknowledged before its handler returned nil. Counters name the peer
// (dropped_total and retried_total, label peer: the first 256 peers, then
// "other").
//
// What a flooding peer still costs the others: each of its messages is
// pulled and naked once per redelivery (cheap, but not free: the pull
// passes its backlog once before reaching anything stored after it), and
// a naked message stays ack-pending until its delay ends, so
// MaxAckPending (65536) must exceed what a peer can have in flight; a
// flood larger than that holds up later messages until its own share has
// worked off the excess. Cut such a peer off with BlockedPeers.
//
// Payloads are opaque bytes: signed onionmsg envelopes. The bus
// authenticates the sender only as far as NATS permissions do: the
// subject names the sending LSP's node key (Msg.From, the from argument of
// a RequestHandler), and Permissions lets an LSP publish only with its own
// key there. Handlers must still check that the envelope is signed by
// that key.
//
// Each LSP owns one JetStream stream (StreamName) capturing its inbound
// durable subjects and reads it with one durable pull consumer
// (ConsumerName). The operator hosting a shared server creates the streams
// (Provisioner); see permissions.go for why LSPs cannot. StartEmbedded
// runs a loopback-only server for one machine; RenderServerConfig writes
// the configuration of a shared one.
//
// Floor: ground. Owns NATS: the embedded server, streams, subjects,
// permissions; it imports nothing of asynclsp's.
package bus
