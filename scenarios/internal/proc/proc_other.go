//go:build !linux

package proc

import "syscall"

// sysProcAttr puts a child in its own process group. Outside Linux there is
// no parent-death signal: a child can outlive a program killed outright.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}
