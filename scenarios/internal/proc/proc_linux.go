//go:build linux

package proc

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel kill
// it when this process dies; a detached child gets its own session instead
// and outlives this process.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
