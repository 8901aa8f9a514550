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
