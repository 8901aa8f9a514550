// Package testkit holds what asynclsp's tests share: an in-process NATS
// server with LSP connections, deterministic node keys, and a fake lnd for
// state-machine tests. Nothing here is used by production code.
//
// Floor: ground (tests only). Owns shared test fixtures; it imports only the
// ground floor (bus, lnd, onionmsg), never a role.
package testkit
