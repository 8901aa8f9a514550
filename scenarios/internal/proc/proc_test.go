package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out")
	p := &Process{Name: "sleep", Path: "/bin/sleep", Args: []string{"60"}, LogPath: log}
	ctx := context.Background()
	if err := p.Stop(ctx, time.Second); err != nil {
		t.Fatalf("stop before start: %v", err)
	}
	if err := p.Start("=== first"); err != nil {
		t.Fatal(err)
	}
	if !p.Running() || p.PID() == 0 {
		t.Fatal("not running after start")
	}
	if err := p.Start(""); err == nil {
		t.Fatal("second start of a running process")
	}
	if err := p.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Running() {
		t.Fatal("running after stop")
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("signal after stop: %v", err)
	}
	// It starts again (a node's Start after Stop), and the header lines
	// accumulate in the log.
	if err := p.Start("=== second"); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := Tail(log, 2); got != "=== first\n=== second" {
		t.Fatalf("log tail %q", got)
	}
}

// A process that ignores SIGTERM is killed after the timeout, and Stop
// says so.
func TestStopKillsAfterTimeout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "stubborn")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: "stubborn", Path: bin, LogPath: filepath.Join(dir, "out")}
	if err := p.Start(""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(Tail(p.LogPath, 1), "ready"); {
		if time.Now().After(deadline) {
			t.Fatal("the script did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	err := p.Stop(context.Background(), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "killed") || p.Running() {
		t.Fatalf("stop: %v, running %v", err, p.Running())
	}
}

func TestFreePort(t *testing.T) {
	seen := make(map[int]bool)
	for range 20 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}

// TestReadUsage reads this process's usage: resident memory, its parts,
// and CPU time that grows.
func TestReadUsage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.RSSAnon <= 0 || u.RSSFile <= 0 ||
		u.RSSAnon+u.RSSFile > u.RSS {
		t.Fatalf("usage %+v", u)
	}
	// Spin until the kernel has counted a tick more (10 ms).
	for start := time.Now(); ; {
		later, err := ReadUsage(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if later.CPU > u.CPU {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("CPU still %v after spinning 10 s", later.CPU)
		}
	}
	if _, err := ReadUsage(1 << 30); err == nil {
		t.Fatal("usage of a process that does not exist")
	}
}
