// Package lsp runs asynclspd processes next to the lnd nodes of a regtest
// network, for the scenarios and the demo: the real binary, built once per
// process from this module (Build), configured through the ini file an
// operator would write, on free loopback ports.
//
// Start writes <dir>/asynclspd.conf for one lnd node (role, embedded NATS or
// the URL of another daemon's, API and ops listeners, any further settings),
// starts the daemon and returns once /readyz answers. A Daemon gives its API
// URL, its admin token, clients of the sender API (a wallet's, with a token
// the admin API issues, and the operator's), and its Prometheus metrics; it
// stops with SIGTERM (Stop), dies with SIGKILL (Kill) and starts again on
// the same data dir and ports (Restart, or Relaunch without waiting). Its
// output goes to <dir>/asynclspd.log, every start appended after a header
// line.
//
// Every process is tracked by its pid and stopped by it. On Linux the kernel
// also kills a daemon when the process that started it dies, so a panicking
// or timed-out test leaves nothing running. StartT ties a daemon to a test:
// stopped when the test ends, its log kept and its tail printed if the test
// failed.
//
// Floor: top. Owns asynclspd processes in tests, started from cmd/asynclspd;
// it imports onionmsg, the roles' clients and the regtest harness.
package lsp
