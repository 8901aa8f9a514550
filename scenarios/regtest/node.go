package regtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
	"google.golang.org/grpc"
)

// Node names, in payment order.
const (
	Alice = "alice"
	Bob   = "bob"
	Carol = "carol"
	Dave  = "dave"
)

// nodeNames lists the nodes in payment order.
var nodeNames = []string{Alice, Bob, Carol, Dave}

func isNodeName(name string) bool {
	for _, n := range nodeNames {
		if n == name {
			return true
		}
	}

	return false
}

// clientRetry is how long a node's adapter client keeps repeating calls
// while its lnd restarts; generous, as four lnd share two cores here.
const clientRetry = 60 * time.Second

// Node is one lnd node of the network.
type Node struct {
	// Name is alice, bob, carol or dave; also the node's alias.
	Name string

	// PubKey is the node's identity key.
	PubKey route.Vertex

	// RPCPort and P2PPort are lnd's listeners on 127.0.0.1. They stay
	// the same across Stop and Start.
	RPCPort int
	P2PPort int

	// Dir is lnd's --lnddir: data, tls.cert, logs.
	Dir string

	// TLSCertPath and MacaroonPath authenticate to lnd (admin).
	TLSCertPath  string
	MacaroonPath string

	// LogPath is lnd's log file.
	LogPath string

	// Client is the adapter's client for this node. It stays the same
	// across Stop and Start and reconnects by itself.
	Client *lnd.Client

	binDir    string
	log       *slog.Logger
	clientLog *slog.Logger
	proc      *proc.Process

	// mu guards ops, the harness's own connection for what the adapter
	// does not offer (addresses, peers, channel opening, graph).
	mu      sync.Mutex
	ops     lnrpc.LightningClient
	opsConn *grpc.ClientConn

	// peers are the nodes this one has a channel with; Start reconnects
	// to them.
	peers []*Node

	// started is when the process last started.
	started time.Time
}

// newNode prepares a node's folder and ports.
func newNode(name, dir, binDir, btcdRPC, btcdCert string, extra []string,
	detach bool, log *slog.Logger) (*Node, error) {

	rpcPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p2pPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	chainDir := filepath.Join("data", "chain", "bitcoin", "regtest")
	n := &Node{
		Name:         name,
		RPCPort:      rpcPort,
		P2PPort:      p2pPort,
		Dir:          dir,
		TLSCertPath:  filepath.Join(dir, "tls.cert"),
		MacaroonPath: filepath.Join(dir, chainDir, "admin.macaroon"),
		LogPath: filepath.Join(
			dir, "logs", "bitcoin", "regtest", "lnd.log",
		),
		binDir:    binDir,
		log:       log.With("component", "regtest", "node", name),
		clientLog: log.With("node", name),
	}

	args := []string{
		"--lnddir=" + dir,
		"--alias=" + name,
		"--noseedbackup",
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + btcdRPC,
		"--btcd.rpcuser=" + btcdUser,
		"--btcd.rpcpass=" + btcdPass,
		"--btcd.rpccert=" + btcdCert,
		fmt.Sprintf("--rpclisten=127.0.0.1:%d", rpcPort),
		fmt.Sprintf("--listen=127.0.0.1:%d", p2pPort),
		"--norest",
		"--nobootstrap",
		"--debuglevel=debug",
		"--bitcoin.defaultchanconfs=1",
		"--bitcoin.defaultremotedelay=4",
		"--trickledelay=50",
		"--gossip.sub-batch-delay=5ms",
		"--caches.rpc-graph-cache-duration=100ms",
		"--db.batch-commit-interval=10ms",
		"--maxpendingchannels=10",
		// Peers of a restarted node come back within seconds.
		"--minbackoff=200ms",
		"--maxbackoff=2s",
	}
	n.proc = &proc.Process{
		Name:    "lnd " + name,
		Path:    filepath.Join(binDir, "lnd"),
		Args:    append(args, extra...),
		LogPath: filepath.Join(dir, "lnd.out"),
		Detach:  detach,
	}

	return n, nil
}

// RPCAddr returns lnd's gRPC address.
func (n *Node) RPCAddr() string {
	return fmt.Sprintf("127.0.0.1:%d", n.RPCPort)
}

// P2PAddr returns lnd's peer-to-peer address.
func (n *Node) P2PAddr() string {
	return fmt.Sprintf("127.0.0.1:%d", n.P2PPort)
}

// PID returns lnd's process id (0 before the first start).
func (n *Node) PID() int {
	return n.proc.PID()
}

// Running reports whether lnd is running.
func (n *Node) Running() bool {
	return n.proc.Running()
}

// Lncli returns the command line that runs lncli against this node; append
// a command, e.g. append(n.Lncli(), "getinfo").
func (n *Node) Lncli() []string {
	return []string{
		filepath.Join(n.binDir, "lncli"),
		"--network=regtest",
		"--rpcserver=" + n.RPCAddr(),
		"--tlscertpath=" + n.TLSCertPath,
		"--macaroonpath=" + n.MacaroonPath,
	}
}

// LncliCommand returns Lncli as one line for a shell.
func (n *Node) LncliCommand() string {
	return shellJoin(n.Lncli())
}

// Stop stops lnd, keeping its data and ports. The Client stays; its calls
// fail with lnd.ErrUnavailable until Start.
func (n *Node) Stop(ctx context.Context) error {
	n.log.Info("stopping lnd", "pid", n.PID())

	return n.proc.Stop(ctx, stopTimeout)
}

// Start starts lnd again after Stop, reconnects it to its channel peers
// and returns once it is synced to the chain and its channels are active.
func (n *Node) Start(ctx context.Context) error {
	if err := n.launch(ctx); err != nil {
		return err
	}
	for _, p := range n.peers {
		if !p.Running() {
			continue
		}
		if err := n.connect(ctx, p); err != nil {
			return err
		}
	}

	return n.WaitChannelsActive(ctx)
}

// launch starts the lnd process and waits until its RPC server is up.
func (n *Node) launch(ctx context.Context) error {
	if err := n.startProcess(); err != nil {
		return err
	}

	return n.waitReady(ctx)
}

// startProcess starts the lnd process.
func (n *Node) startProcess() error {
	if err := n.proc.Start(""); err != nil {
		return err
	}
	n.started = time.Now()
	n.log.Info("lnd started", "pid", n.PID(), "rpc", n.RPCAddr())

	return nil
}

// waitReady waits until the started lnd answers RPCs; the first time it
// also connects the clients.
func (n *Node) waitReady(ctx context.Context) error {
	err := poll(ctx, "lnd "+n.Name+" macaroon", func(context.Context) (
		bool, error) {

		if !n.Running() {
			return false, n.exited()
		}
		// lnd creates the file, then writes it: an empty one is not
		// there yet (seen under load: "empty macaroon data").
		fi, err := os.Stat(n.MacaroonPath)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}

		return err == nil && fi.Size() > 0, err
	})
	if err != nil {
		return err
	}

	if n.Client == nil {
		if err := n.dial(ctx); err != nil {
			return err
		}
	}

	// The client retries while lnd finishes starting.
	info, err := n.Client.NodeInfo(ctx)
	if err != nil {
		if !n.Running() {
			return n.exited()
		}

		return fmt.Errorf("lnd %s: %w", n.Name, err)
	}
	// The key is learnt at the first start and never changes: a restart
	// leaves it alone, as other goroutines read it meanwhile.
	if n.PubKey != info.PubKey {
		n.PubKey = info.PubKey
	}
	n.log.Info("lnd ready", "pubkey", info.PubKey,
		"took", since(n.started))

	return nil
}

// dial connects the adapter client and the harness's own connection.
func (n *Node) dial(ctx context.Context) error {
	client, err := lnd.Connect(ctx, lnd.Config{
		Host:         n.RPCAddr(),
		TLSCertPath:  n.TLSCertPath,
		MacaroonPath: n.MacaroonPath,
		Network:      "regtest",
		RetryFor:     clientRetry,
		// The first connect waits for lnd to create its wallet, which
		// took 34 s on a busy box: longer than a call's default 30 s.
		RPCTimeout: clientRetry,
		MaxBackoff: time.Second,
		Logger:     n.clientLog,
	})
	if err != nil {
		if !n.Running() {
			return n.exited()
		}

		return fmt.Errorf("lnd %s: %w", n.Name, err)
	}

	conn, err := lndclient.NewBasicConn(
		n.RPCAddr(), n.TLSCertPath, filepath.Dir(n.MacaroonPath),
		"regtest",
	)
	if err != nil {
		_ = client.Close()
		return fmt.Errorf("lnd %s: %w", n.Name, err)
	}

	n.mu.Lock()
	n.Client, n.ops, n.opsConn = client, lnrpc.NewLightningClient(conn),
		conn
	n.mu.Unlock()

	return nil
}

// rpc returns the harness's own lnd connection.
func (n *Node) rpc() lnrpc.LightningClient {
	n.mu.Lock()
	defer n.mu.Unlock()

	return n.ops
}

// closeClients closes the adapter client and the harness's connection.
func (n *Node) closeClients() {
	n.mu.Lock()
	client, conn := n.Client, n.opsConn
	n.mu.Unlock()

	if client != nil {
		_ = client.Close()
	}
	if conn != nil {
		_ = conn.Close()
	}
}

// exited returns the error for an lnd that stopped on its own, with the end
// of its output.
func (n *Node) exited() error {
	return fmt.Errorf("lnd %s %w; see %s and %s:\n%s", n.Name, errExited,
		n.proc.LogPath, n.LogPath, proc.Tail(n.proc.LogPath, 10))
}

// shellJoin quotes args for a POSIX shell.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			quoted[i] = a
			continue
		}
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}

	return strings.Join(quoted, " ")
}
