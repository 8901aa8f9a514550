package lsp

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
)

// errNotRunning: the daemon is not running.
var errNotRunning = errors.New("not running")

// process is one asynclspd process; start may be called again once it has
// exited.
type process struct {
	path    string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// start runs the process with its output appended to logPath, after a
// header line. The child is in its own process group (a Ctrl-C in the
// terminal reaches the demo, which stops it) and dies with this process.
func (p *process) start(header string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("already running (pid %d)",
				p.cmd.Process.Pid)
		}
	}

	out, err := os.OpenFile(p.logPath,
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// The child keeps its own copy of the descriptor.
	defer out.Close()
	if _, err := fmt.Fprintln(out, header); err != nil {
		return err
	}

	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.err = cmd, exited, nil

	// Reaps the child; ends when it exits, which stop and kill ensure.
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()

	return nil
}

// pid returns the process id of the last start, 0 before the first.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}

	return p.cmd.Process.Pid
}

// done returns a channel closed when the last started process exits, and
// nil if it never started.
func (p *process) done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.exited
}

// running reports whether the process is started and has not exited.
func (p *process) running() bool {
	done := p.done()
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

// exitErr is how the last process ended (nil: exit status 0); only
// meaningful once done is closed.
func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.err
}

// signal sends sig to the running process.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return errNotRunning
	}
	select {
	case <-exited:
		return errNotRunning
	default:
	}
	err := cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return errNotRunning
	}

	return err
}

// wait waits until the process exits or ctx ends.
func (p *process) wait(ctx context.Context) error {
	done := p.done()
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

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a file, for error messages.
func tail(path string, lines int) string {
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
