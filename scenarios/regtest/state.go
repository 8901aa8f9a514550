package regtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// StateFile is the file in a network's folder where Up records what it
// started, for Down.
const StateFile = "state.json"

// Errors of Up and Down.
var (
	// ErrRunning is returned by Up when the folder's network still runs.
	ErrRunning = errors.New("a regtest network is already running there")

	// ErrNotRunning is returned by Down when the folder has no network
	// that Up started and Down did not stop yet.
	ErrNotRunning = errors.New("no regtest network to stop there")
)

// markerFile is written into every network's folder, so a stale one can be
// told from a folder of someone else's and cleared.
const markerFile = ".asynclsp-regtest"

// State describes a detached network: enough to use it and to stop it.
type State struct {
	// Dir is the network's folder.
	Dir string `json:"dir"`

	// Btcctl is the btcctl command line, e.g. to mine: Btcctl generate 1.
	Btcctl string `json:"btcctl"`

	// Btcd is the btcd process.
	Btcd Proc `json:"btcd"`

	// Nodes are the lnd nodes, in payment order.
	Nodes []NodeState `json:"nodes"`
}

// Proc identifies a process. Marker is an argument unique to it, checked
// against the running process so a recycled pid is never signaled.
type Proc struct {
	PID    int    `json:"pid"`
	Marker string `json:"marker"`
}

// NodeState describes one lnd node of a detached network.
type NodeState struct {
	Name    string `json:"name"`
	PubKey  string `json:"pubkey"`
	RPC     string `json:"rpc"`
	P2P     string `json:"p2p"`
	Lncli   string `json:"lncli"`
	LogPath string `json:"log"`
	Proc    Proc   `json:"proc"`
}

// Up starts a network whose processes outlive this one in opts.Dir
// (required), writes its StateFile and closes the clients. A folder left by
// an earlier Up whose processes are gone is reused; one whose processes
// still run is an ErrRunning.
func Up(ctx context.Context, opts Options) (State, error) {
	if opts.Dir == "" {
		return State{}, fmt.Errorf("%w: Up needs a Dir",
			ErrInvalidOptions)
	}
	if err := clearStale(opts.Dir); err != nil {
		return State{}, err
	}

	opts.Detach = true
	n, err := Start(ctx, opts)
	if err != nil {
		return State{}, err
	}
	st := n.state()
	for _, node := range n.Nodes() {
		node.closeClients()
	}
	if n.logFile != nil {
		_ = n.logFile.Close()
	}
	if err := writeState(st); err != nil {
		return st, err
	}

	return st, nil
}

// Down stops the network that Up started in dir: every lnd, then btcd, by
// pid, and removes the StateFile. The folder and its logs stay.
func Down(ctx context.Context, dir string) error {
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotRunning, dir)
	}
	if err != nil {
		return err
	}

	var errs []error
	for _, node := range st.Nodes {
		if err := stopPID(ctx, "lnd "+node.Name, node.Proc); err != nil {
			errs = append(errs, err)
		}
	}
	if err := stopPID(ctx, "btcd", st.Btcd); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	return os.Remove(filepath.Join(dir, StateFile))
}

// state describes n for the StateFile.
func (n *Network) state() State {
	st := State{
		Dir:    n.Dir,
		Btcctl: n.BtcctlCommand(),
		Btcd: Proc{
			PID:    n.btcd.proc.PID(),
			Marker: "--datadir=" + filepath.Join(n.btcd.dir, "data"),
		},
	}
	for _, node := range n.Nodes() {
		st.Nodes = append(st.Nodes, NodeState{
			Name:    node.Name,
			PubKey:  node.PubKey.String(),
			RPC:     node.RPCAddr(),
			P2P:     node.P2PAddr(),
			Lncli:   node.LncliCommand(),
			LogPath: node.LogPath,
			Proc:    Proc{PID: node.PID(), Marker: "--lnddir=" + node.Dir},
		})
	}

	return st
}

// clearStale removes dir if it holds an earlier network that is gone (Down
// stopped it, or its processes died). A folder without the harness's
// marker is left alone: Start refuses it unless it is empty.
func clearStale(dir string) error {
	st, err := readState(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		procs := []Proc{st.Btcd}
		for _, n := range st.Nodes {
			procs = append(procs, n.Proc)
		}
		for _, p := range procs {
			if processMatches(p.PID, p.Marker) {
				return fmt.Errorf("%w: %s (pid %d); stop it "+
					"first (make regtest-down)", ErrRunning,
					dir, p.PID)
			}
		}
	}

	if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
		return nil
	}

	return os.RemoveAll(dir)
}

// writeState writes st to its folder's StateFile.
func writeState(st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}

	return os.WriteFile(filepath.Join(st.Dir, StateFile), data, 0o600)
}

// readState reads dir's StateFile.
func readState(dir string) (State, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return State{}, fmt.Errorf("regtest state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("regtest state %s: %w", dir, err)
	}

	return st, nil
}

// stopPID stops a process this one did not start: SIGTERM, then SIGKILL
// after stopTimeout. A process that is gone, or whose pid now belongs to
// another program, is left alone.
func stopPID(ctx context.Context, name string, p Proc) error {
	if p.PID <= 0 || !processMatches(p.PID, p.Marker) {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}

		return fmt.Errorf("stop %s (pid %d): %w", name, p.PID, err)
	}

	gone := func(context.Context) (bool, error) {
		return !processMatches(p.PID, p.Marker), nil
	}
	termCtx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if poll(termCtx, name+" to exit", gone) == nil {
		return nil
	}

	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil &&
		!errors.Is(err, syscall.ESRCH) {

		return fmt.Errorf("kill %s (pid %d): %w", name, p.PID, err)
	}
	if err := poll(ctx, name+" to die", gone); err != nil {
		return err
	}

	return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v, killed", name,
		p.PID, stopTimeout)
}
