package regtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Network is a running regtest network: btcd and four lnd nodes,
// alice -> bob -> carol -> dave, with channels alice-bob and bob-carol
// (public) and carol-dave (private), all active and known to everyone who
// routes over them.
type Network struct {
	// Dir holds everything: btcd/, alice/, bob/, carol/, dave/ and
	// harness.log.
	Dir string

	// The four nodes.
	Alice, Bob, Carol, Dave *Node

	// Short channel ids of the three channels.
	AliceBobChan, BobCarolChan, CarolDaveChan uint64

	// ReadyIn is how long Start took.
	ReadyIn time.Duration

	opts    Options
	baseLog *slog.Logger
	log     *slog.Logger
	logFile *os.File
	btcd    *btcd
	ownDir  bool

	keep      atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Start starts btcd and the four lnd nodes in a folder of their own, funds
// the nodes, opens the channels and returns once every channel is active
// and in everyone's graph. On failure everything started is stopped and the
// folder is kept; the error says where.
func Start(ctx context.Context, opts Options) (_ *Network, err error) {
	started := time.Now()
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}

	n := &Network{Dir: opts.Dir, opts: opts}
	if n.Dir == "" {
		n.Dir, err = os.MkdirTemp("", "asynclsp-regtest-")
		if err != nil {
			return nil, err
		}
		n.ownDir = true
	} else if err := prepareDir(n.Dir); err != nil {
		return nil, err
	}
	if n.Dir, err = filepath.Abs(n.Dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(
		filepath.Join(n.Dir, markerFile), nil, 0o600,
	); err != nil {
		return nil, err
	}

	n.log = opts.Logger
	if n.log == nil {
		n.logFile, err = os.Create(filepath.Join(n.Dir, "harness.log"))
		if err != nil {
			return nil, err
		}
		n.log = slog.New(slog.NewTextHandler(
			n.logFile, &slog.HandlerOptions{Level: slog.LevelDebug},
		))
	}
	n.baseLog = n.log
	n.log = n.log.With("component", "regtest")

	defer func() {
		if err != nil {
			n.KeepDir()
			_ = n.Close()
			err = fmt.Errorf("regtest network: %w (logs in %s)", err,
				n.Dir)
		}
	}()

	if err := n.boot(ctx); err != nil {
		return nil, err
	}
	if err := n.setup(ctx); err != nil {
		return nil, err
	}
	n.ReadyIn = time.Since(started)
	n.log.Info("network ready", "took", n.ReadyIn.Round(time.Millisecond),
		"dir", n.Dir)

	return n, nil
}

// prepareDir creates dir, which must be empty if it exists.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s is not empty", ErrInvalidOptions, dir)
	}

	return nil
}

// boot starts btcd, mines past segwit activation while the four lnd start,
// and waits until every lnd has caught up.
func (n *Network) boot(ctx context.Context) error {
	var err error
	n.btcd, err = newBtcd(
		filepath.Join(n.Dir, "btcd"), n.opts.BinDir, n.opts.Detach,
	)
	if err != nil {
		return err
	}
	if err := n.btcd.start(ctx); err != nil {
		return err
	}
	n.log.Info("btcd ready", "pid", n.btcd.proc.PID(),
		"rpc", n.btcd.rpcPort)

	nodes := make([]*Node, len(nodeNames))
	for i, name := range nodeNames {
		nodes[i], err = newNode(
			name, filepath.Join(n.Dir, name), n.opts.BinDir,
			fmt.Sprintf("127.0.0.1:%d", n.btcd.rpcPort),
			n.btcd.certPath, n.opts.LndArgs[name], n.opts.Detach,
			n.baseLog,
		)
		if err != nil {
			return err
		}
	}
	n.Alice, n.Bob, n.Carol, n.Dave = nodes[0], nodes[1], nodes[2], nodes[3]

	for _, node := range nodes {
		if err := node.startProcess(); err != nil {
			return err
		}
	}
	// A detached network is recorded at once, so Down can stop it even
	// if this process dies before it is ready.
	if n.opts.Detach {
		if err := writeState(n.state()); err != nil {
			return err
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		mined := time.Now()
		if err := n.btcd.generate(segwitHeight); err != nil {
			return err
		}
		n.log.Info("mined past segwit activation",
			"blocks", segwitHeight,
			"took", time.Since(mined).Round(time.Millisecond))

		return nil
	})
	for _, node := range nodes {
		g.Go(func() error { return node.waitReady(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}

	return n.WaitSynced(ctx)
}

// Nodes returns the four nodes in payment order.
func (n *Network) Nodes() []*Node {
	return []*Node{n.Alice, n.Bob, n.Carol, n.Dave}
}

// Node returns the node called name, or nil.
func (n *Network) Node(name string) *Node {
	for _, node := range n.Nodes() {
		if node != nil && node.Name == name {
			return node
		}
	}

	return nil
}

// Height returns btcd's best block height.
func (n *Network) Height(ctx context.Context) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	h, err := n.btcd.height()
	if err != nil {
		return 0, fmt.Errorf("height: %w", err)
	}

	return uint32(h), nil
}

// Mine mines blocks and returns once every running lnd has synced to the
// new height.
func (n *Network) Mine(ctx context.Context, blocks int) error {
	if blocks <= 0 {
		return fmt.Errorf("mine: %d blocks", blocks)
	}
	if err := n.btcd.generate(blocks); err != nil {
		return err
	}

	return n.WaitSynced(ctx)
}

// WaitSynced waits until every running lnd is synced to btcd's tip.
func (n *Network) WaitSynced(ctx context.Context) error {
	tip, err := n.Height(ctx)
	if err != nil {
		return err
	}
	for _, node := range n.Nodes() {
		if node == nil || !node.Running() {
			continue
		}
		if err := node.WaitSynced(ctx, tip); err != nil {
			return err
		}
	}

	return nil
}

// BtcctlCommand returns the btcctl command line for this network's btcd,
// e.g. to mine by hand: <command> generate 1.
func (n *Network) BtcctlCommand() string {
	return shellJoin(n.btcd.btcctl(n.opts.BinDir))
}

// KeepDir keeps Dir, with every log, when the network is closed.
func (n *Network) KeepDir() {
	n.keep.Store(true)
}

// Close stops every lnd (in parallel), then btcd, each by its pid, and
// removes Dir unless it was given in Options or KeepDir was called. It is
// safe to call more than once.
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.shutdown(context.Background())
		if n.ownDir && !n.keep.Load() {
			if err := os.RemoveAll(n.Dir); err != nil {
				n.closeErr = errors.Join(n.closeErr, err)
			}
		}
	})

	return n.closeErr
}

// shutdown closes the clients and stops the processes, lnd first.
func (n *Network) shutdown(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, node := range n.Nodes() {
		if node == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			node.closeClients()
			if err := node.proc.Stop(ctx, stopTimeout); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	if n.btcd != nil {
		if err := n.btcd.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.log.Info("network stopped", "dir", n.Dir)
	if n.logFile != nil {
		errs = append(errs, n.logFile.Close())
	}

	return errors.Join(errs...)
}
