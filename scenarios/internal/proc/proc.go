// Package proc supervises the child processes the scenarios start: btcd,
// lnd and asynclspd. A child is in its own process group (a Ctrl-C in the
// terminal reaches only the program, which stops its children in order) and,
// unless detached, dies with this process, even on a panic or a test
// timeout (on Linux).
//
// Floor: top (scenarios only). Owns child processes; it imports nothing of
// asynclsp's.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning: the process is not running.
var ErrNotRunning = errors.New("not running")

// Process is one child process; Start may be called again once it exited.
type Process struct {
	Name    string
	Path    string
	Args    []string
	Env     []string // added to this process's environment
	LogPath string   // stdout and stderr are appended here

	// Detach gives the child its own session: it outlives this process
	// (make regtest-up).
	Detach bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start runs the process, its output appended to LogPath after header (if
// not empty).
func (p *Process) Start(header string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%s is already running (pid %d)", p.Name, p.cmd.Process.Pid)
		}
	}
	out, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%s: output file: %w", p.Name, err)
	}
	// The child keeps its own copy of the descriptor.
	defer out.Close()
	if header != "" {
		if _, err := fmt.Fprintln(out, header); err != nil {
			return err
		}
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr(p.Detach)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.err = cmd, exited, nil

	// Reaps the child; ends when it exits, which Stop ensures.
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// PID is the process id of the last start, 0 before the first.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Done is closed when the last started process exits; nil before a start.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Running reports whether the process is started and has not exited.
func (p *Process) Running() bool {
	done := p.Done()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// ExitErr is how the last process ended (nil: exit status 0), once Done is
// closed.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Signal sends sig to the running process.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return ErrNotRunning
	}
	select {
	case <-exited:
		return ErrNotRunning
	default:
	}
	err := cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return ErrNotRunning
	}
	return err
}

// Wait waits until the process exits or ctx ends.
func (p *Process) Wait(ctx context.Context) error {
	done := p.Done()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop sends SIGTERM and waits for the process to exit; after timeout, or
// when ctx ends, it sends SIGKILL, waits for that, and says so.
func (p *Process) Stop(ctx context.Context, timeout time.Duration) error {
	err := p.Signal(syscall.SIGTERM)
	if errors.Is(err, ErrNotRunning) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", p.Name, p.PID(), err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.Wait(wctx) == nil {
		return nil
	}
	// SIGKILL cannot be ignored; waiting for it is bounded.
	_ = p.Signal(syscall.SIGKILL)
	_ = p.Wait(context.Background())
	return fmt.Errorf("%s (pid %d) did not exit after SIGTERM, killed", p.Name, p.PID())
}

// ports hands out free TCP ports on 127.0.0.1, never the same one twice
// from this process.
var ports = struct {
	sync.Mutex
	used map[int]bool
}{used: make(map[int]bool)}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that this process has not handed out before.
func FreePort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		if !ports.used[port] {
			ports.used[port] = true
			return port, nil
		}
	}
	return 0, errors.New("free port: no unused port found")
}

// Tail returns the last lines of a file, for error messages.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
