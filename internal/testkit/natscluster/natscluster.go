// Package natscluster lays out a nats-server cluster for tests. It depends
// on nothing of asynclsp, so the bus package's own tests can use it too.
//
// Floor: ground (tests only). Owns a test cluster's layout; it imports
// nothing of asynclsp's.
package natscluster

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// Options returns the options of n JetStream servers on loopback, each
// routed to all the others as one cluster named name, every write fsynced,
// each storing in its own temp dir. The caller starts them.
func Options(t testing.TB, name string, n int) []*server.Options {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	opts := make([]*server.Options, n)
	for i := range opts {
		opts[i] = &server.Options{
			ServerName: fmt.Sprintf("node%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			NoSigs:     true,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			SyncAlways: true,
			Cluster:    server.ClusterOpts{Name: name, Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
	}
	return opts
}
