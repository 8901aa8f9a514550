package holdstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
)

const crashChildEnv = "HOLDSTORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	os.Exit(m.Run())
}

// crashChild is the process the crash test kills. It resumes every
// unresolved hold, creates new ones, and drives them all forward with random
// legal transitions from several goroutines (so commits are grouped), alone
// and in batches. After each write returns it prints one line per event:
// "<seq> <hold id> <to state>". A printed line is a promise that the event is
// durable.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: path})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	report := func(ev Event) {
		out.Lock()
		fmt.Fprintf(os.Stdout, "%d %s %s\n", ev.Seq, ev.HoldID, ev.To)
		out.Unlock()
	}
	resumed, err := s.Unresolved(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child recovery:", err)
		os.Exit(2)
	}
	fmt.Fprintln(os.Stdout, "ready")

	work := make(chan *Hold, len(resumed)+64)
	for _, h := range resumed {
		if !h.State.Final() {
			work <- h
		}
	}
	var seed uint64
	for i := 0; i < 4; i++ {
		seed++
		go func(r *rand.Rand) {
			for {
				var h *Hold
				select {
				case h = <-work:
				default:
					h = testHold(randomChildPreimage(r))
					ev, err := s.Create(ctx, h)
					if err != nil {
						fmt.Fprintln(os.Stderr, "child create:", err)
						os.Exit(2)
					}
					report(ev)
					h.State = StateCreated
				}
				next := transitions[h.State]
				to := next[r.IntN(len(next))]
				tr := Transition{ID: h.ID, From: h.State, To: to,
					Reason:   Reasons[r.IntN(len(Reasons))],
					Resolved: to.Final() && r.IntN(2) == 0}
				switch to {
				case StateHeld:
					tr.IncomingExpiry, tr.DeadlineHeight = 1200, 1100
				case StateSettled:
					p := childPreimage(h)
					tr.Preimage = &p
				}
				ev, err := s.Apply(ctx, tr)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child apply:", err)
					os.Exit(2)
				}
				report(ev)
				h.State = to
				if !to.Final() {
					work <- h
				}
			}
		}(rand.New(rand.NewPCG(uint64(os.Getpid()), seed)))
	}
	select {} // killed by the parent
}

// The child derives each hold's release secret from its preimage (see
// testHold), so after a restart it can rebuild the preimage: the secret holds
// the second half, and the child fills the first half with zeros.
func randomChildPreimage(r *rand.Rand) lntypes.Preimage {
	var p lntypes.Preimage
	for i := 16; i < 32; i++ {
		p[i] = byte(r.Uint32())
	}
	return p
}

func childPreimage(h *Hold) lntypes.Preimage {
	var p lntypes.Preimage
	copy(p[16:], h.ReleaseSecret[:16])
	return p
}

// TestCrashRecovery kills a writing child with SIGKILL at random moments, 200
// times, and after each kill reopens the file and checks that every event the
// child reported is there, that no transition is half applied, that the
// log invariants hold, and that the running totals equal a recount.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test spawns 200 processes; run without -short")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	v := newLogVerifier()
	const cycles = 200
	reported := 0
	for cycle := 0; cycle < cycles; cycle++ {
		lines := runAndKill(t, path, rand.IntN(150))
		reported += len(lines)

		s, err := Open(context.Background(), Config{Path: path})
		if err != nil {
			t.Fatalf("cycle %d: reopen after SIGKILL: %v", cycle, err)
		}
		if err := v.verify(s, lines); err != nil {
			s.Close()
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		// The triggers kept the totals through the kill: Open's
		// recount found nothing to repair.
		if n := s.TotalsRepaired(); n != 0 {
			s.Close()
			t.Fatalf("cycle %d: Open repaired %d running totals", cycle, n)
		}
		checkTotals(t, s)
		s.Close()
	}
	if reported < cycles {
		t.Fatalf("the child reported only %d events in %d cycles", reported, cycles)
	}
	t.Logf("%d cycles, %d reported events, %d in the log, %d holds",
		cycles, reported, v.seq, len(v.state))
}

// runAndKill starts the child, kills it with SIGKILL once it has reported k
// events (it keeps writing while the signal is on its way, so the kill lands
// at an arbitrary point of a commit) and returns every event it reported.
func runAndKill(t *testing.T, path string, k int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := make(chan struct{})
	done := make(chan []string)
	go func() {
		var lines []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() != "ready" {
				lines = append(lines, sc.Text())
			}
			if len(lines) == k {
				close(kill)
			}
		}
		done <- lines
	}()
	select {
	case <-kill:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child reported fewer than %d events in 30s: %s", k, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lines := <-done
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("child ended by itself (%v): %s", err, stderr.String())
	}
	return lines
}

// logVerifier checks the event log incrementally across cycles: the file only
// grows, so each cycle verifies what was added since the last.
type logVerifier struct {
	seq    uint64
	state  map[ID]State
	finals map[ID]int
}

func newLogVerifier() *logVerifier {
	return &logVerifier{state: map[ID]State{}, finals: map[ID]int{}}
}

func (v *logVerifier) verify(s *Store, reported []string) error {
	ctx := context.Background()
	evs, err := s.Events(ctx, v.seq, 0)
	if err != nil {
		return err
	}
	bySeq := make(map[uint64]Event, len(evs))
	touched := map[ID]bool{}
	for _, ev := range evs {
		if ev.Seq != v.seq+1 {
			return fmt.Errorf("event %d follows %d: gap in the log", ev.Seq, v.seq)
		}
		v.seq = ev.Seq
		prev, seen := v.state[ev.HoldID]
		if !seen && ev.From != StateNone || seen && prev != ev.From {
			return fmt.Errorf("event %d: hold %s goes %s -> %s but was %q",
				ev.Seq, ev.HoldID, ev.From, ev.To, prev)
		}
		if !Legal(ev.From, ev.To) {
			return fmt.Errorf("event %d: illegal %s -> %s", ev.Seq, ev.From, ev.To)
		}
		if ev.Final {
			v.finals[ev.HoldID]++
		}
		v.state[ev.HoldID] = ev.To
		touched[ev.HoldID] = true
		bySeq[ev.Seq] = ev
	}
	for _, line := range reported {
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("child printed %q", line)
		}
		seq, _ := strconv.ParseUint(f[0], 10, 64)
		ev, ok := bySeq[seq]
		if !ok || ev.HoldID.String() != f[1] || string(ev.To) != f[2] {
			return fmt.Errorf("reported event %q is not in the log (have %+v)",
				line, ev)
		}
	}
	for id := range touched {
		h, err := s.Get(ctx, id)
		if err != nil {
			return err
		}
		if h.State != v.state[id] {
			return fmt.Errorf("hold %s is %s but its log ends in %s: a "+
				"partial transition", id, h.State, v.state[id])
		}
		want := 0
		if h.State.Final() {
			want = 1
		}
		if v.finals[id] != want {
			return fmt.Errorf("hold %s (%s) has %d final events", id,
				h.State, v.finals[id])
		}
		if h.State == StateSettled && (h.Preimage == nil || h.Preimage.Hash() != h.PaymentHash) {
			return fmt.Errorf("settled hold %s has no valid preimage", id)
		}
	}
	return nil
}
