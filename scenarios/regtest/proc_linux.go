//go:build linux

package regtest

import (
	"bytes"
	"os"
	"strconv"
)

// processMatches reports whether pid is alive and its command line
// contains marker, so a recycled pid is never signaled.
func processMatches(pid int, marker string) bool {
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err == nil && isZombie(stat) {
		return false
	}

	return bytes.Contains(cmdline, []byte(marker))
}

// isZombie reads the state field of /proc/<pid>/stat ("pid (comm) S ...").
func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}

	return stat[i+2] == 'Z'
}
