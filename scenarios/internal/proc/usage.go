package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Usage is what the kernel reports a process uses (Linux's /proc).
type Usage struct {
	// RSS is resident memory (VmRSS): RSSAnon, its anonymous part (heap,
	// stacks), plus RSSFile, its file-backed part (the binary, mapped
	// files such as SQLite's), plus shared memory. PSS counts shared
	// pages by share. All in bytes.
	RSS, RSSAnon, RSSFile, PSS int64

	// CPU is the user and system time used so far.
	CPU time.Duration
}

// userHZ is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// ReadUsage reads the usage of process pid from /proc; it fails where
// there is no /proc (not Linux) or no such process.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	status, err := os.ReadFile(dir + "status")
	if err != nil {
		return u, err
	}
	fields := kBFields(status)
	u.RSS, u.RSSAnon, u.RSSFile = fields["VmRSS"], fields["RssAnon"],
		fields["RssFile"]
	// smaps_rollup is newer (Linux 4.14) and costlier; PSS is extra.
	if rollup, err := os.ReadFile(dir + "smaps_rollup"); err == nil {
		u.PSS = kBFields(rollup)["Pss"]
	}

	stat, err := os.ReadFile(dir + "stat")
	if err != nil {
		return u, err
	}
	// "pid (comm) state ppid ...": utime and stime are fields 14 and 15,
	// the 12th and 13th after the command's closing parenthesis.
	i := bytes.LastIndexByte(stat, ')')
	rest := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(rest) < 13 {
		return u, fmt.Errorf("proc: %sstat: unexpected %q", dir, stat)
	}
	utime, err1 := strconv.ParseInt(rest[11], 10, 64)
	stime, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("proc: %sstat: unexpected %q", dir, stat)
	}
	u.CPU = time.Duration(utime+stime) * time.Second / userHZ

	return u, nil
}

// kBFields parses the "Name:   123 kB" lines of a /proc file into bytes.
func kBFields(b []byte) map[string]int64 {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		f := strings.Fields(rest)
		if !ok || len(f) != 2 || f[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			out[name] = v << 10
		}
	}

	return out
}
