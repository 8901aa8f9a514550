package bus

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestEmbeddedServer(t *testing.T) {
	s := startTestServer(t)
	js := s.ns.JetStreamConfig()
	if js == nil {
		t.Fatal("JetStream is off")
	}
	if !js.SyncAlways {
		t.Error("JetStream does not fsync every write (sync_interval: always)")
	}
	if addr := s.Addr(); addr == nil || !addr.IP.IsLoopback() || addr.Port == 0 || addr.Port == 4222 {
		t.Errorf("listening on %v, want a random loopback port", addr)
	}
	if got := s.ns.ClusterAddr(); got != nil {
		t.Errorf("cluster listener on %v", got)
	}
	if got := s.ns.MonitorAddr(); got != nil {
		t.Errorf("monitoring listener on %v", got)
	}

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()
	if _, err := nats.Connect(s.ClientURL()); err == nil {
		t.Error("server still accepts connections after Shutdown")
	}
}

func TestEmbeddedConfigRefusesNonLoopback(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "nats.example.com"} {
		if _, err := (EmbeddedConfig{StoreDir: t.TempDir(), Host: host}).options(); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("host %q: got %v, want ErrNotLoopback", host, err)
		}
	}
	for _, host := range []string{"", "localhost", "127.0.0.1", "::1"} {
		opts, err := (EmbeddedConfig{StoreDir: t.TempDir(), Host: host}).options()
		if err != nil {
			t.Errorf("host %q: %v", host, err)
			continue
		}
		if !opts.SyncAlways || !opts.JetStream || opts.Port != -1 {
			t.Errorf("host %q: sync always %v, jetstream %v, port %d", host, opts.SyncAlways, opts.JetStream, opts.Port)
		}
	}
	if _, err := (EmbeddedConfig{}).options(); !errors.Is(err, ErrConfig) {
		t.Errorf("no store dir: got %v, want ErrConfig", err)
	}
}
