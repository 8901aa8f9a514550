package bus

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// envelopeSize is about the size of an onionmsg envelope.
const envelopeSize = 300

// benchPair is a sender and a receiver on an embedded server; syncAlways
// false shows what the per-write fsync costs.
func benchPair(b *testing.B, syncAlways bool) (sender, receiver *Conn) {
	b.Helper()
	opts, err := EmbeddedConfig{StoreDir: b.TempDir()}.options()
	if err != nil {
		b.Fatal(err)
	}
	opts.SyncAlways = syncAlways
	srv, err := startServer(testCtx(b), opts, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	urls := []string{srv.ClientURL()}
	sender = connectTest(b, urls, testKey(1))
	receiver = connectTest(b, urls, testKey(2))
	if err := receiver.EnsureStream(testCtx(b), StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	return sender, receiver
}

// BenchmarkDurableRoundTrip is one durable message: Publish (waits for
// the PubAck), delivery to the receiver's handler, ack. It reports the
// publish-to-handler latency's median and 99th percentile.
func BenchmarkDurableRoundTrip(b *testing.B) {
	for _, c := range []struct {
		name       string
		syncAlways bool
	}{{"sync=always", true}, {"sync=default", false}} {
		b.Run(c.name, func(b *testing.B) {
			sender, receiver := benchPair(b, c.syncAlways)
			entered := make(chan time.Time, 1)
			runConsumer(b, receiver, func(context.Context, Msg) error {
				entered <- time.Now()
				return nil
			})
			data := make([]byte, envelopeSize)
			to := receiver.NodeKey()
			ctx := testCtx(b)
			// Warm up: consumer created and pulling, inboxes set up.
			if err := sender.Publish(ctx, to, KindReleaseHeldHTLC, testMsgID(-1), data); err != nil {
				b.Fatal(err)
			}
			<-entered

			var latencies []time.Duration
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if err := sender.Publish(ctx, to, KindReleaseHeldHTLC, testMsgID(i), data); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, (<-entered).Sub(start))
			}
			reportPercentiles(b, latencies)
		})
	}
}

// BenchmarkPeerIsolation is one peer's durable message (publish to
// handler) while another peer floods: 5,000 messages stored before the
// measurement starts, whose handler takes 1ms each (slow) or fails
// (failing), against no flood at all (quiet). It reports the genuine
// message's median and 99th percentile latency.
func BenchmarkPeerIsolation(b *testing.B) {
	for _, c := range []struct {
		name  string
		flood int
		fail  bool
	}{{"quiet", 0, false}, {"flood=slow", 5000, false}, {"flood=failing", 5000, true}} {
		b.Run(c.name, func(b *testing.B) {
			sender, receiver := benchPair(b, true)
			flooder := connectTest(b, []string{receiver.nc.ConnectedUrl()}, testKey(3))
			entered := make(chan time.Time, 1)
			runConsumer(b, receiver, func(ctx context.Context, m Msg) error {
				if m.From == flooder.NodeKey() {
					if c.fail {
						return errors.New("flood: refused")
					}
					time.Sleep(time.Millisecond) // the handler's work
					return nil
				}
				entered <- time.Now()
				return nil
			})
			data := make([]byte, envelopeSize)
			to := receiver.NodeKey()
			ctx := testCtx(b)
			if err := sender.Publish(ctx, to, KindReleaseHeldHTLC, testMsgID(-1), data); err != nil {
				b.Fatal(err)
			}
			<-entered
			if c.flood > 0 {
				flood(b, flooder, to, 0, c.flood)
			}

			var latencies []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if err := sender.Publish(ctx, to, KindReleaseHeldHTLC, testMsgID(i), data); err != nil {
					b.Fatal(err)
				}
				latencies = append(latencies, (<-entered).Sub(start))
			}
			reportPercentiles(b, latencies)
		})
	}
}

// BenchmarkRequestReply is one core NATS request and its answer between
// two LSPs.
func BenchmarkRequestReply(b *testing.B) {
	sender, receiver := benchPair(b, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- receiver.ServeRequests(ctx, KindInvoiceRequest, func(_ context.Context, _ NodeKey, data []byte) ([]byte, error) {
			return data, nil
		})
	}()
	b.Cleanup(func() { cancel(); <-done })
	data := make([]byte, envelopeSize)
	to := receiver.NodeKey()
	reqCtx := testCtx(b)
	waitFor(b, 5*time.Second, func() error {
		_, err := sender.Request(reqCtx, to, KindInvoiceRequest, data)
		return err
	})

	var latencies []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := sender.Request(reqCtx, to, KindInvoiceRequest, data); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	reportPercentiles(b, latencies)
}

// reportPercentiles reports the median and the 99th percentile.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100])/1e3, "p99-µs")
}
