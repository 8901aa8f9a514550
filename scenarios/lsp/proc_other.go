//go:build !linux

package lsp

import "syscall"

// sysProcAttr puts the daemon in its own process group. Without Linux's
// parent-death signal, a daemon outlives a test binary that dies without
// running its cleanups.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
