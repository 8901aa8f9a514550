//go:build !race

package lsp

// raceBuild: this binary has no race detector, and neither does the
// asynclspd Build makes unless $RaceEnv asks for it.
const raceBuild = false
