//go:build !linux

package regtest

import (
	"syscall"
)

// sysProcAttr puts a child in its own process group so a Ctrl-C in the
// terminal does not reach it. Outside Linux there is no parent-death
// signal: a child can outlive a test binary that is killed outright.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}

	return &syscall.SysProcAttr{Setpgid: true}
}

// processMatches reports whether pid is alive. Without /proc the command
// line cannot be checked.
func processMatches(pid int, _ string) bool {
	return syscall.Kill(pid, 0) == nil
}
