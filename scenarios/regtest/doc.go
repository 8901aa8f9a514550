// Package regtest starts a real Lightning network on regtest for tests and
// for people: btcd and four lnd nodes on 127.0.0.1, alice (sender wallet)
// -> bob (sender LSP) -> carol (receiver LSP) -> dave (receiver wallet).
// alice-bob and bob-carol are public channels, carol-dave a private one in
// which carol pushed dave some funds; all sizes are Options.
//
// Start returns once every channel is active and known to every node that
// routes over it, with a ready *lnd.Client per node. StartT does the same
// for a test and cleans up after it. Up and Down (make regtest-up,
// make regtest-down) leave a network running to explore with lncli.
//
// The binaries come from Options.BinDir or $ASYNCLSP_REGTEST_BIN, which
// `make regtest-bin` fills from the versions pinned in go.mod. Every process
// is stopped by its pid, lnd before btcd (lnd hangs if btcd goes first). On
// Linux a child is also killed by the kernel when the process that started
// it dies, so a panicking or timed-out test leaves nothing running.
//
// Known traps, measured on this machine (see REGTEST.md): btcd has no
// generatetoaddress, so it mines to a key the harness holds and the harness
// funds the lnd wallets from those coinbases; segwit activates only after
// about 432 blocks, so 500 are mined first; btcd always creates an empty
// ~/.btcd; btcctl needs -C (the harness writes that config).
//
// Floor: top. Owns btcd and lnd processes on regtest; it imports only the lnd
// adapter of asynclsp's.
package regtest
