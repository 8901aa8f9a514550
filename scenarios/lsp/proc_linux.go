//go:build linux

package lsp

import "syscall"

// sysProcAttr puts the daemon in its own process group and has the kernel
// kill it when this process dies, even on a panic or a test timeout.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
