package bus

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testLogger logs warnings and errors to the test's output until the test
// ends; with BUS_TEST_LOG=debug it logs everything.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.stop)
	level := slog.LevelWarn
	if os.Getenv("BUS_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// testWriter drops writes after the test ended: nats-server and nats.go
// may log from their goroutines while shutting down.
type testWriter struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}

// testKey returns a real node key, the same for the same i.
func testKey(i int) NodeKey {
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i))
	h := sha256.Sum256(seed[:])
	_, pub := btcec.PrivKeyFromBytes(h[:])
	var k NodeKey
	copy(k[:], pub.SerializeCompressed())
	return k
}

// testMsgID returns a message id, the same for the same i.
func testMsgID(i int) MsgID {
	var id MsgID
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	return id
}

// msgIndex recovers i from testMsgID(i).
func msgIndex(id MsgID) int { return int(binary.BigEndian.Uint64(id[8:])) }

// startTestServer starts an embedded server in a temporary directory and
// shuts it down at the end of the test.
func startTestServer(t testing.TB) *Server {
	t.Helper()
	s, err := StartEmbedded(testCtx(t), EmbeddedConfig{StoreDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// testCtx is a context that ends with the test, or after a minute.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connectTest connects key to url with short retry waits, and closes the
// connection at the end of the test.
func connectTest(t testing.TB, urls []string, key NodeKey, edit ...func(*ClientConfig)) *Conn {
	t.Helper()
	cfg := ClientConfig{
		URLs:          urls,
		NodeKey:       key,
		Logger:        testLogger(t),
		ReconnectWait: 50 * time.Millisecond,
		Backoff:       func(uint64) time.Duration { return 20 * time.Millisecond },
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := Connect(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Connect %s: %v", key, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// runConsumer runs Consume in a goroutine until the returned stop
// function is called; stop returns Consume's error.
func runConsumer(t testing.TB, c *Conn, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Consume(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitFor polls cond until it returns nil or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newUser creates an NKey user, writes its seed to a file and returns the
// public key and the seed file.
func newUser(t testing.TB) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	pub, err = kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, seedFile
}

// startFromConfig loads a rendered nats-server configuration, the way
// nats-server does, and starts it on a random port.
func startFromConfig(t testing.TB, conf []byte) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("load rendered config: %v", err)
	}
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	opts.NoSigs = true
	s, err := startServer(testCtx(t), opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// counterValue reads a counter.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
