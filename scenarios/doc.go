// Package scenarios proves asynclsp on a real Lightning network: btcd and
// four lnd nodes on regtest (package regtest), asynclspd for bob in the
// sender role and for carol in the receiver role (package lsp), and the two
// wallet backends of DESIGN.md, alice's at bob and dave's at carol, through
// the Go clients wallets use.
//
// A Cast is that whole cast, assembled on a running network; its methods
// are the steps of an async payment (Create, AlicePays, WaitState,
// WaitItem, Release), the faults (RestartBob, RestartCarol) and what checks
// them (Balances, WaitNoPendingHTLCs, and Judge, which judges a whole run
// by every lnd node's records and counts every violation).
// The tests of this package are the failure scenarios of issue 8, each
// against the real daemons and lnd; package demo tells the happy path as a
// story (make demo) and measures release-to-settle against a direct payment
// (Measure). Scale (make scale, TestScale at a small size) holds N
// payments at once at bob, each a real HTLC on a hold invoice, and
// measures what that costs asynclspd and lnd (issue 15).
//
// Floor: top. Owns the end-to-end scenarios on regtest; it may import every
// floor, as a wallet backend would: through the roles' clients.
package scenarios
