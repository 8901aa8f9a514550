package regtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// stopTimeout is how long a process gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 30 * time.Second

// process is one child process (btcd or lnd) started by the harness.
type process struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	detach  bool

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// start runs the process with stdout and stderr appended to logPath. The
// process is in its own process group (a Ctrl-C in the terminal does not
// reach it) and, unless detached, is killed if this process dies.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%s is already running (pid %d)",
				p.name, p.cmd.Process.Pid)
		}
	}

	out, err := os.OpenFile(
		p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600,
	)
	if err != nil {
		return fmt.Errorf("%s: output file: %w", p.name, err)
	}
	// The child keeps its own copy of the descriptor.
	defer out.Close()

	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr(p.detach)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}

	exited := make(chan struct{})
	p.cmd, p.exited, p.err = cmd, exited, nil

	// Reaps the child; ends when it exits, which stop ensures.
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()

	return nil
}

// pid returns the process id, or 0 if it never started.
func (p *process) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.cmd == nil {
		return 0
	}

	return p.cmd.Process.Pid
}

// running reports whether the process was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// done returns a channel closed when the process exits (nil if it never
// started).
func (p *process) done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.exited
}

// stop sends SIGTERM and waits for the process to exit; after stopTimeout,
// or when ctx ends, it sends SIGKILL and waits for that.
func (p *process) stop(ctx context.Context) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil &&
		!errors.Is(err, os.ErrProcessDone) {

		return fmt.Errorf("stop %s (pid %d): %w", p.name,
			cmd.Process.Pid, err)
	}

	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-exited:
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}

	// SIGKILL cannot be ignored; waiting for it is bounded.
	_ = cmd.Process.Kill()
	<-exited

	return fmt.Errorf("%s (pid %d) did not exit after SIGTERM, killed",
		p.name, cmd.Process.Pid)
}

// ports hands out free TCP ports on 127.0.0.1, never the same one twice
// from this process.
var ports = struct {
	sync.Mutex
	used map[int]bool
}{used: make(map[int]bool)}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
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
