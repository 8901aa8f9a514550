package bus

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestConsumeAfterServerRestart: the receiver LSP crashes in the middle of
// a handler, then the server restarts. Every message stored with a PubAck
// and not acknowledged (the one in the handler, the ones buffered or
// published meanwhile) is on disk (JetStream file store) and delivered to
// the restarted LSP; the acknowledged ones are not. The sender's
// connection lives through the restart and reconnects on its own.
func TestConsumeAfterServerRestart(t *testing.T) {
	cfg := EmbeddedConfig{StoreDir: t.TempDir(), Logger: testLogger(t)}
	srv, err := StartEmbedded(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = srv.Addr().Port // restart where the clients reconnect
	urls := []string{srv.ClientURL()}
	shortAckWait := func(c *ClientConfig) { c.AckWait = time.Second }
	sender := connectTest(t, urls, testKey(1))
	crashing := connectTest(t, urls, testKey(2), shortAckWait)
	if err := crashing.EnsureStream(testCtx(t), StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	p := &pair{srv: srv, sender: sender, receiver: crashing}

	// The first receiver handles 1 and 2, and is stuck in the handler of
	// 3 when it dies (3 and 4 delivered, never acknowledged).
	inHandler := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	before := newRecorder(func(m Msg) error {
		if msgIndex(m.ID) == 3 {
			close(inHandler)
			<-release
			return errors.New("crashed")
		}
		return nil
	})
	go func() { _ = crashing.Consume(context.Background(), before.handle) }()
	p.publish(t, 1, 2, 3, 4)
	before.waitHandled(t, 5*time.Second, 1, 2)
	<-inHandler
	crashing.nc.Close() // the process dies: no ack, no nak, no drain
	p.publish(t, 5, 6)

	srv.Shutdown()
	srv, err = StartEmbedded(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	p.publish(t, 7) // through the sender's reconnected connection

	restarted := connectTest(t, urls, testKey(2), shortAckWait)
	after := newRecorder(nil)
	runConsumer(t, restarted, after.handle)
	after.waitHandled(t, 20*time.Second, 3, 4, 5, 6, 7)
	for i := 3; i <= 7; i++ {
		if n := after.count(i); n != 1 {
			t.Errorf("message %d handled %d times after the restart, want 1", i, n)
		}
	}
	for _, i := range []int{1, 2} {
		if n := len(after.deliveriesOf(i)); n != 0 {
			t.Errorf("acknowledged message %d delivered again after the restart", i)
		}
	}
}
