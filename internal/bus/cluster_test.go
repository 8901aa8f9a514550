package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit/natscluster"
)

// startCluster starts n clustered nats-servers with JetStream in-process,
// each routed to all the others, on random loopback ports.
func startCluster(t *testing.T, n int) []*Server {
	t.Helper()
	servers := make([]*Server, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, opts := range natscluster.Options(t, "asynclsp-test", n) {
		wg.Go(func() {
			s, err := startServer(testCtx(t), opts, testLogger(t))
			servers[i] = s
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	return servers
}

// TestClusterNodeLoss: on a three-node JetStream cluster with a
// three-replica stream, the stream's leader is killed while a sender
// publishes and the receiver consumes. Every message that got a PubAck is
// handled, and nothing else is.
func TestClusterNodeLoss(t *testing.T) {
	const total = 300
	servers := startCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	sender := connectTest(t, urls, testKey(1))
	// A message in flight to the receiver when its server dies is
	// redelivered after AckWait: keep the test short.
	receiver := connectTest(t, urls, testKey(2), func(c *ClientConfig) { c.AckWait = 2 * time.Second })
	waitFor(t, 30*time.Second, func() error {
		// Until the cluster has elected a meta leader, this goes unanswered.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return receiver.EnsureStream(ctx, StreamConfig{Replicas: 3})
	})

	rec := newRecorder(nil)
	runConsumer(t, receiver, rec.handle)

	var mu sync.Mutex
	acked := map[int]bool{}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	published := make(chan error, 1)
	go func() {
		for i := range total {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := sender.Publish(ctx, receiver.NodeKey(), KindReleaseHeldHTLC, testMsgID(i), []byte("release"))
			cancel()
			if err != nil {
				published <- fmt.Errorf("message %d: %w", i, err)
				return
			}
			mu.Lock()
			acked[i] = true
			mu.Unlock()
		}
		published <- nil
	}()

	// A third of the way through, kill the stream's leader.
	waitFor(t, 30*time.Second, func() error {
		if n := ackedCount(); n < total/3 {
			return fmt.Errorf("%d acked", n)
		}
		return nil
	})
	stream, err := receiver.js.Stream(testCtx(t), StreamName(receiver.NodeKey()))
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo()
	if info.Cluster == nil || info.Config.Replicas != 3 {
		t.Fatalf("stream is not replicated: %+v", info.Cluster)
	}
	var killed string
	for _, s := range servers {
		if s.Name() == info.Cluster.Leader {
			killed = s.Name()
			s.Shutdown()
		}
	}
	if killed == "" {
		t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
	}
	t.Logf("killed %s, the stream leader, after %d PubAcks", killed, ackedCount())

	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}
	waitFor(t, 60*time.Second, func() error {
		for i := range total {
			if acked[i] && rec.count(i) == 0 {
				return fmt.Errorf("acknowledged message %d not handled yet", i)
			}
		}
		return nil
	})

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := range rec.handled {
		if !acked[i] {
			t.Errorf("message %d handled but never acknowledged to the sender", i)
		}
	}
	if len(rec.handled) != len(acked) || len(acked) != total {
		t.Errorf("handled %d distinct messages, %d acknowledged, %d published", len(rec.handled), len(acked), total)
	}
	t.Logf("%d deliveries for %d messages", len(rec.deliveries), len(rec.handled))
}
