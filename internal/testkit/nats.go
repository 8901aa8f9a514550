package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Key returns a node key pair, the same for the same i.
func Key(i int) (*btcec.PrivateKey, onionmsg.NodeKey) {
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i))
	h := sha256.Sum256(append([]byte("asynclsp testkit key"), seed[:]...))
	priv, pub := btcec.PrivKeyFromBytes(h[:])
	k, err := onionmsg.NewNodeKey(pub.SerializeCompressed())
	if err != nil {
		panic(err)
	}
	return priv, k
}

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// StartNATS starts an embedded JetStream server on a random loopback port,
// with its store in a temp dir, and shuts it down when the test ends.
func StartNATS(t testing.TB) *bus.Server {
	t.Helper()
	srv, err := bus.StartEmbedded(context.Background(), bus.EmbeddedConfig{
		StoreDir: t.TempDir(),
		Host:     "127.0.0.1",
		Logger:   Quiet(),
	})
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// Conn is an LSP's bus connection with its own metrics registry.
type Conn struct {
	*bus.Conn
	Registry *prometheus.Registry
}

// Dropped is how many messages of kind the bus dropped for reason.
func (c *Conn) Dropped(kind bus.Kind, reason string) float64 {
	return c.counter("asynclsp_bus_dropped_total", "kind", string(kind), "reason", reason)
}

// Consumed is how many deliveries of kind the bus settled with result
// ("acked", "retried" or "dropped").
func (c *Conn) Consumed(kind bus.Kind, result string) float64 {
	return c.counter("asynclsp_bus_messages_total", "kind", string(kind), "result", result)
}

// counter sums the counter name over the series whose labels match the
// name/value pairs given.
func (c *Conn) counter(name string, labelPairs ...string) float64 {
	var total float64
	mfs, _ := c.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labelPairs); i += 2 {
				match = match && labels[labelPairs[i]] == labelPairs[i+1]
			}
			if match {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// ConnectLSP connects the LSP with key to srv, creates its inbound stream,
// and closes the connection when the test ends.
func ConnectLSP(t testing.TB, srv *bus.Server, key onionmsg.NodeKey) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	metrics, err := bus.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := bus.Connect(ctx, bus.ClientConfig{
		URLs:           []string{srv.ClientURL()},
		NodeKey:        bus.NodeKey(key),
		Metrics:        metrics,
		Logger:         Quiet(),
		ReconnectWait:  50 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("connect %s: %v", key, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatalf("stream of %s: %v", key, err)
	}
	return &Conn{Conn: conn, Registry: reg}
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
