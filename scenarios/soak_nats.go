package scenarios

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsReady bounds the wait for a NATS node to take connections, and for
// the cluster's JetStream to answer.
const natsReady = 60 * time.Second

// NATSCluster is a 3-node JetStream cluster run in this process for the
// soak, each node on fixed loopback ports and its own store, so that a node
// stopped (StopNode) comes back (StartNode) as the same member, where the
// daemons' URLs find it again.
type NATSCluster struct {
	dir    string
	client []int // client port of each node
	route  []int // cluster port of each node

	mu      sync.Mutex
	servers []*natsserver.Server // nil while a node is down
}

// StartNATSCluster starts n nodes storing under dir, and returns once
// JetStream answers on the cluster.
func StartNATSCluster(ctx context.Context, dir string, n int) (_ *NATSCluster, err error) {
	c := &NATSCluster{dir: dir, client: make([]int, n), route: make([]int, n),
		servers: make([]*natsserver.Server, n)}
	for i := range n {
		if c.client[i], err = proc.FreePort(); err != nil {
			return nil, err
		}
		if c.route[i], err = proc.FreePort(); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i := range n {
		if err := c.StartNode(i); err != nil {
			return nil, err
		}
	}

	return c, c.waitJetStream(ctx)
}

// URLs are the nodes' client URLs, in order.
func (c *NATSCluster) URLs() []string {
	urls := make([]string, len(c.client))
	for i, p := range c.client {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}

	return urls
}

// Nodes is how many nodes the cluster has.
func (c *NATSCluster) Nodes() int { return len(c.client) }

// options are node i's: the same every time it starts.
func (c *NATSCluster) options(i int) *natsserver.Options {
	routes := make([]string, len(c.route))
	for j, p := range c.route {
		routes[j] = fmt.Sprintf("nats-route://127.0.0.1:%d", p)
	}

	return &natsserver.Options{
		ServerName: fmt.Sprintf("soak%d", i+1),
		Host:       "127.0.0.1",
		Port:       c.client[i],
		NoSigs:     true,
		NoLog:      true,
		JetStream:  true,
		StoreDir:   filepath.Join(c.dir, fmt.Sprintf("node%d", i+1)),
		SyncAlways: true,
		Cluster: natsserver.ClusterOpts{Name: "asynclsp-soak",
			Host: "127.0.0.1", Port: c.route[i]},
		Routes: natsserver.RoutesFromStr(strings.Join(routes, ",")),
	}
}

// StartNode starts node i (again) and waits until it takes connections.
func (c *NATSCluster) StartNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[i] != nil {
		return fmt.Errorf("nats node %d: already running", i+1)
	}
	s, err := natsserver.NewServer(c.options(i))
	if err != nil {
		return fmt.Errorf("nats node %d: %w", i+1, err)
	}
	s.Start()
	if !s.ReadyForConnections(natsReady) {
		s.Shutdown()
		s.WaitForShutdown()
		return fmt.Errorf("nats node %d: not ready after %v", i+1, natsReady)
	}
	c.servers[i] = s

	return nil
}

// StopNode shuts node i down, as a lost machine: its clients move to the
// other nodes.
func (c *NATSCluster) StopNode(i int) error {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s == nil {
		return fmt.Errorf("nats node %d: not running", i+1)
	}
	s.Shutdown()
	s.WaitForShutdown()

	return nil
}

// Running reports whether node i runs.
func (c *NATSCluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.servers[i] != nil
}

// Close shuts every running node down.
func (c *NATSCluster) Close() {
	for i := range c.client {
		if c.Running(i) {
			_ = c.StopNode(i)
		}
	}
}

// waitJetStream waits until JetStream answers through the cluster: a meta
// leader is elected.
func (c *NATSCluster) waitJetStream(ctx context.Context) error {
	nc, err := nats.Connect(strings.Join(c.URLs(), ","),
		nats.Name("scenarios: soak observer"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, natsReady)
	defer cancel()

	return poll(ctx, "JetStream on the NATS cluster",
		func(ctx context.Context) (bool, error) {
			// One look at a time: a request made before the meta
			// leader is elected may never be answered.
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := js.AccountInfo(ctx)
			return err == nil, err
		})
}
