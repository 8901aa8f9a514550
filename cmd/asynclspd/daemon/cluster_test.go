package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/testkit/natscluster"
	"github.com/asynclsp/asynclsp/onionmsg"
	rclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/senderlsp"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	prommodel "github.com/prometheus/client_model/go"
)

// startNATSCluster starts n nats-servers with JetStream in-process, routed
// to each other as one cluster, on random loopback ports; they stop when
// the test ends.
func startNATSCluster(t *testing.T, n int) []*natsserver.Server {
	t.Helper()
	servers := make([]*natsserver.Server, n)
	for i, opts := range natscluster.Options(t, "asynclsp-daemon-test", n) {
		s, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		servers[i] = s
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	return servers
}

// streamLeader is the server leading the inbound stream of key.
func streamLeader(t *testing.T, urls []string, key onionmsg.NodeKey) string {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.StreamName(bus.NodeKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Config.Replicas != 3 || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream of %s is not replicated three times: %+v", key, info.Cluster)
	}
	return info.Cluster.Leader
}

// TestClusterNodeLoss: bob's sender role and carol's receiver role run on a
// three-node JetStream cluster, each inbound stream with three replicas.
// Payments flow (invoice_request, held_htlc_available, the receiver's
// release relayed to bob, hold_outcome back to carol) and the server that
// leads bob's stream is killed a third of the way in. Every hold still
// ends SETTLED, paid once, with one final event; carol sees every outcome;
// the bus dropped nothing.
func TestClusterNodeLoss(t *testing.T) {
	const (
		total    = 36
		inFlight = 6 // holds not yet settled at any time
	)
	servers := startNATSCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	e := newLSPEnv(t, envOptions{urls: urls, replicas: 3, ackWait: 2 * time.Second})
	e.upload(total)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu       sync.Mutex
		holds    []*holdstore.Hold
		failures []error
		settled  atomic.Int64
	)
	countSettled := func() int {
		n := 0
		for _, h := range heldSoFar(&mu, &holds) {
			got, err := e.bob.store.Get(ctx, h.ID)
			if err == nil && got.State == holdstore.StateSettled {
				n++
			}
		}
		settled.Store(int64(n))
		return n
	}

	// The wallet side: create and pay holds, at most inFlight unsettled.
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range total {
			for i-int(settled.Load()) >= inFlight && ctx.Err() == nil {
				countSettled()
				time.Sleep(10 * time.Millisecond)
			}
			h, err := e.createAndPay(ctx, fmt.Sprintf("pay-%d", i))
			mu.Lock()
			if err != nil {
				failures = append(failures, err)
			} else {
				holds = append(holds, h)
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	// dave, online the whole time: releases whatever is pending.
	wg.Go(func() { e.releaseLoop(ctx, total) })

	eventually(t, 60*time.Second, "a third of the holds settled", func() error {
		if n := countSettled(); n < total/3 {
			return fmt.Errorf("%d settled", n)
		}
		return nil
	})
	leader := streamLeader(t, urls, e.bob.key)
	t.Logf("carol's stream is led by %s", streamLeader(t, urls, e.carol.key))
	var killed bool
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
			s.WaitForShutdown()
			killed = true
		}
	}
	if !killed {
		t.Fatalf("bob's stream leader %q is none of the servers", leader)
	}
	mu.Lock()
	createdAtKill := len(holds)
	mu.Unlock()
	t.Logf("killed %s, bob's stream leader, with %d of %d holds created and %d settled",
		leader, createdAtKill, total, settled.Load())
	if createdAtKill == total {
		t.Fatal("every hold was created before the kill: nothing flowed across it")
	}

	eventually(t, 90*time.Second, "every hold settled", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) > 0 {
			return nil // reported below
		}
		if len(holds) < total {
			return fmt.Errorf("%d of %d holds created", len(holds), total)
		}
		for _, h := range holds {
			got, err := e.bob.store.Get(ctx, h.ID)
			if err != nil {
				return err
			}
			if got.State != holdstore.StateSettled || !got.Resolved {
				return fmt.Errorf("hold %s is %s (resolved %v)", h.ID, got.State, got.Resolved)
			}
		}
		return nil
	})
	cancel()
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("creating a payment failed for good: %v", failures)
	}

	for _, h := range holds {
		if inv, ok := e.bobLnd.Invoice(h.PaymentHash); !ok || inv.State.String() != "SETTLED" {
			t.Errorf("hold %s: hold invoice %v", h.ID, inv.State)
		}
		if n := e.bobLnd.Sends(h.PaymentHash); n != 1 {
			t.Errorf("hold %s: the receiver's invoice was paid %d times", h.ID, n)
		}
		evs, err := e.bob.store.History(context.Background(), h.ID)
		if err != nil {
			t.Fatal(err)
		}
		finals := 0
		for _, ev := range evs {
			if ev.Final {
				finals++
			}
		}
		if finals != 1 {
			t.Errorf("hold %s: %d final events", h.ID, finals)
		}
	}

	// carol heard every outcome: her whole mailbox is settled.
	admin := adminOf(t, e.carol)
	eventually(t, 30*time.Second, "carol's mailbox settled", func() error {
		st, err := admin.Stats(context.Background())
		if err != nil {
			return err
		}
		if st.Mailbox[adminclient.MailboxSettled] != total {
			return fmt.Errorf("carol's mailbox: %v", st.Mailbox)
		}
		return nil
	})
	for _, l := range []*lsp{e.bob, e.carol} {
		if n := dropped(t, l); n != 0 {
			t.Errorf("%s's bus dropped %v messages", l.key.String()[:8], n)
		}
	}
}

func heldSoFar(mu *sync.Mutex, holds *[]*holdstore.Hold) []*holdstore.Hold {
	mu.Lock()
	defer mu.Unlock()
	return append([]*holdstore.Hold(nil), (*holds)...)
}

// createAndPay creates a payment of 25 000 sat to dave at carol, retrying
// with the same idempotency key while carol cannot be reached (a NATS node
// is down), and pays its hold invoice; it returns once bob holds it.
func (e *lspEnv) createAndPay(ctx context.Context, key string) (*holdstore.Hold, error) {
	req := senderlsp.PaymentRequest{ReceiverKey: e.dave, ReceiverLSP: e.carol.key,
		AmountMsat: 25_000_000, Owner: "wallet", RequestKey: key}
	var (
		h   *holdstore.Hold
		err error
	)
	for attempt := 0; attempt < 100; attempt++ {
		h, err = e.bob.sender.CreatePayment(ctx, req)
		if !errors.Is(err, senderlsp.ErrReceiverLSPUnreachable) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	height, err := e.bobLnd.CurrentHeight(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.bobLnd.PayHoldInvoice(h.PaymentHash, height+h.CltvDelta); err != nil {
		return nil, fmt.Errorf("pay %s: %w", key, err)
	}
	return h, nil
}

// releaseLoop is dave online: he reads his mailbox and releases every
// pending item, until ctx ends. A release carol recorded but could not
// relay (503) is relayed by carol later, so it is not posted again.
func (e *lspEnv) releaseLoop(ctx context.Context, total int) {
	released := map[onionmsg.HoldID]bool{}
	for ctx.Err() == nil {
		items, err := e.daveClient.Mailbox(ctx)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for i := range items {
			it := &items[i]
			if released[it.HoldID] && it.Reason == "" {
				continue
			}
			if _, err := e.daveClient.Release(ctx, it, 10*time.Minute); err == nil ||
				rclient.IsCode(err, rclient.CodeUnavailable) {
				released[it.HoldID] = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminOf is a client of an in-process LSP's admin API.
func adminOf(t *testing.T, l *lsp) *adminclient.Client {
	t.Helper()
	c, err := adminclient.New(adminclient.Config{URL: l.api.URL, Token: l.admin})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dropped sums the LSP's bus drop counters.
func dropped(t *testing.T, l *lsp) float64 {
	t.Helper()
	mfs, err := l.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "asynclsp_bus_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += counter(m)
		}
	}
	return n
}

func counter(m *prommodel.Metric) float64 { return m.GetCounter().GetValue() }
