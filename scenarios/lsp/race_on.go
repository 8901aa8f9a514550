//go:build race

package lsp

// raceBuild: this binary has the race detector, so Build gives asynclspd
// one too.
const raceBuild = true
