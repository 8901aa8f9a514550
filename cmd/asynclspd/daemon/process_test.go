package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the asynclspd the process tests build, once per test binary;
// TestMain removes it.
var binDir struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir.dir != "" {
		os.RemoveAll(binDir.dir)
	}
	os.Exit(code)
}

// asynclspdBinary builds cmd/asynclspd once (go build, as an operator
// would) and returns its path. It skips under -short: a cold build takes
// minutes.
func asynclspdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds asynclspd; skipped with -short")
	}
	binDir.once.Do(func() {
		binDir.dir, binDir.err = os.MkdirTemp("", "asynclspd-test-")
		if binDir.err != nil {
			return
		}
		out := filepath.Join(binDir.dir, "asynclspd")
		cmd := exec.Command("go", "build", "-o", out, "github.com/asynclsp/asynclsp/cmd/asynclspd")
		if b, err := cmd.CombinedOutput(); err != nil {
			binDir.err = fmt.Errorf("go build asynclspd: %v\n%s", err, b)
		}
	})
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	return filepath.Join(binDir.dir, "asynclspd")
}

// proc is an asynclspd process a test started.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

// syncBuffer is a buffer the process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts asynclspd with args and HOME set to home; the process
// is killed when the test ends if it is still running.
func startProc(t *testing.T, home string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(asynclspdBinary(t), args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "HOME="+home)
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits up to timeout for the process to exit and returns its exit
// code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("asynclspd still running after %v; its log:\n%s", timeout, p.stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		return exit.ExitCode()
	}
	if p.err != nil {
		t.Fatal(p.err)
	}
	return 0
}

// stop sends SIGTERM and returns the exit code and how long the process
// took to exit.
func (p *proc) stop(t *testing.T, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t, timeout)
	return code, time.Since(start)
}

// A bad configuration stops asynclspd at once with exit code 2 and a
// message naming the option; --help and --version exit 0.
func TestProcessBadConfig(t *testing.T) {
	home := t.TempDir() // no lnd files: the defaults do not validate
	seed := filepath.Join(home, "seed.nk")
	writeFile(t, seed, "SU...")
	for _, tc := range []struct {
		name string
		args []string
		ini  string
		want []string
	}{
		{"lnd files missing", nil, "", []string{"lnd.tlscertpath", "lnd.macaroonpath"}},
		{"unknown flag", []string{"--lnd.hots=x"}, "", []string{"lnd.hots"}},
		{"bad choice", []string{"--role=both"}, "", []string{"--role"}},
		{"public api", []string{"--api.listen=0.0.0.0:8270"}, "", []string{"api.listen"}},
		{"nats.url", []string{"--nats.url=http://127.0.0.1:4222"}, "", []string{"nats.url"}},
		{"nats credentials", []string{"--nats.nkeyseedfile=" + seed, "--nats.credsfile=" + seed}, "", []string{"nats.nkeyseedfile and nats.credsfile"}},
		{"sender option", []string{"--sender.hold-cltv-delta=5000"}, "", []string{"sender.hold-cltv-delta"}},
		{"config file", nil, "[nats]\nnats.embeddedlisten=0.0.0.0:4222\n", []string{"nats.embeddedlisten"}},
		{"config file syntax", nil, "[api]\napi.lissen=127.0.0.1:1\n", []string{"asynclspd.conf:2", "api.lissen"}},
		{"missing config file", []string{"--configfile=/nonexistent.conf"}, "", []string{"configfile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.ini != "" {
				writeFile(t, filepath.Join(dir, "asynclspd.conf"), tc.ini)
			}
			p := startProc(t, home, append([]string{"--datadir=" + dir}, tc.args...)...)
			if code := p.wait(t, 30*time.Second); code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, p.stderr.String())
			}
			stderr := p.stderr.String()
			if !strings.HasPrefix(stderr, "asynclspd: configuration: ") {
				t.Errorf("stderr %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not name %q", stderr, w)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 1 {
				t.Errorf("a refused configuration left files in the data dir: %v", entries)
			}
		})
	}

	p := startProc(t, home, "--help")
	if code := p.wait(t, 30*time.Second); code != 0 || !strings.Contains(p.stdout.String(), "--nats.nkeyseedfile") {
		t.Errorf("--help: exit %d, stdout %q", code, p.stdout.String())
	}
	p = startProc(t, home, "--version")
	if code := p.wait(t, 30*time.Second); code != 0 || strings.TrimSpace(p.stdout.String()) != "asynclspd "+Version {
		t.Errorf("--version: exit %d, stdout %q", code, p.stdout.String())
	}
}
