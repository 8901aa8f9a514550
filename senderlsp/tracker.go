package senderlsp

import (
	"context"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// tracked is an unresolved hold as the Manager knows it. A hold has a
// runner goroutine only while something is to be done: a HELD hold waiting
// for its release parks (its runner returns), and what a release, a
// refusal, a deadline or lnd's cancel needs to wake it stays here: a few
// hundred bytes, no goroutine, no lnd stream.
type tracked struct {
	fixed fixedHold

	// hold is the hold's state. While r is set only r's goroutine reads
	// or writes it; a parked hold's next runner, started under m.mu,
	// takes it over.
	hold *holdstore.Hold

	// r is the hold's runner, nil while the hold is parked.
	r *runner

	// want counts callers on their way to r (acquire): a runner does not
	// park while one is, so a request never finds it gone unless the hold
	// is resolved or the role is stopping.
	want int

	// circuits are the incoming HTLCs lnd holds for the hold, as lnd's
	// HTLC events name them.
	circuits []lnd.CircuitKey

	// unconfirmed: recovered HELD at start, and lnd has not yet said its
	// invoice is still ACCEPTED (asynclsp_sender_holds_untracked).
	unconfirmed bool
}

func fixedOf(h *holdstore.Hold) fixedHold {
	return fixedHold{
		id: h.ID, hash: h.PaymentHash, secret: h.ReleaseSecret,
		receiver:    onionmsg.NodeKey(h.ReceiverKey),
		receiverLSP: onionmsg.NodeKey(h.ReceiverLSP),
	}
}

// trackLocked indexes the unresolved hold h, if it is not already, without
// starting a runner. m.mu is held.
func (m *Manager) trackLocked(h *holdstore.Hold) *tracked {
	t, ok := m.holds[h.ID]
	if !ok {
		t = &tracked{fixed: fixedOf(h), hold: h}
		m.holds[h.ID] = t
	}
	return t
}

// startRunner indexes h and starts the runner that owns it, unless one
// runs. onStart, when set, sees the runner before its goroutine starts.
func (m *Manager) startRunner(h *holdstore.Hold, onStart func(*runner)) *runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.trackLocked(h)
	if t.r != nil {
		return t.r
	}
	return m.startLocked(t, onStart)
}

// startLocked starts t's runner; nil if the role is not running. m.mu is
// held.
func (m *Manager) startLocked(t *tracked, onStart func(*runner)) *runner {
	if m.ctx == nil || m.ctx.Err() != nil {
		return nil
	}
	r := newRunner(m, t.fixed, t.hold)
	t.r = r
	if onStart != nil {
		onStart(r)
	}
	m.metrics.runnersRunning(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.run(m.ctx)
		m.detach(t, r)
		m.metrics.runnersRunning(-1)
		// Only now: a caller that finds the runner stopped looks again,
		// and sees the hold parked, resolved or the role stopping.
		close(r.stopped)
	}()
	return r
}

// detach forgets r once its goroutine has returned: the hold leaves the
// index if it is resolved. A parked runner was detached by park.
func (m *Manager) detach(t *tracked, r *runner) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.r != r {
		return
	}
	t.r = nil
	if t.hold.Resolved {
		m.untrackLocked(t)
	}
}

func (m *Manager) untrackLocked(t *tracked) {
	delete(m.holds, t.fixed.id)
	for _, c := range t.circuits {
		if m.circuits[c] == t.fixed.id {
			delete(m.circuits, c)
		}
	}
	m.confirmLocked(t)
}

// park ends r's goroutine if nobody is on the way to it: the hold stays
// indexed, and the next acquire starts a runner on it again. Only a HELD
// runner with nothing to do parks.
func (m *Manager) park(r *runner) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.holds[r.fixed.id]
	if t == nil || t.r != r || t.want > 0 {
		return false
	}
	// A poke or recheck is sent only by a caller that holds the runner
	// (want > 0), so with want at 0 every one sent is in its buffer
	// already: one there is work, and parking would lose it.
	if len(r.pokes) > 0 || len(r.checks) > 0 {
		return false
	}
	t.r = nil
	return true
}

// lookup returns what never changes about an unresolved hold.
func (m *Manager) lookup(id holdstore.ID) (fixedHold, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.holds[id]
	if !ok {
		return fixedHold{}, false
	}
	return t.fixed, true
}

// acquire returns the runner of an unresolved hold, starting one if the
// hold is parked, and keeps it from parking until release. nil: the hold is
// not tracked (unknown or resolved) or the role is not running.
func (m *Manager) acquire(id holdstore.ID) *runner {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.holds[id]
	if !ok {
		return nil
	}
	r := t.r
	if r == nil {
		if r = m.startLocked(t, nil); r == nil {
			return nil
		}
	}
	t.want++
	return r
}

// release undoes acquire. The runner is poked, so that it parks if it has
// nothing left to do.
func (m *Manager) release(id holdstore.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.holds[id]
	if !ok {
		return
	}
	t.want--
	if t.want == 0 && t.r != nil {
		t.r.poke()
	}
}

// request hands ev to the hold's runner, waking it if parked, and waits for
// its answer. errRunnerStopped: the hold is not tracked any more (resolved,
// or unknown) or the role is not running.
func (m *Manager) request(ctx context.Context, id holdstore.ID, ev event, done chan error) error {
	return m.requestWhile(ctx, id, ev, done, func() {})
}

// requestWhile is request, with work done by the caller once the runner
// has the event (or is known not to take it), before its answer: work
// overlaps with what the runner does, and always runs.
func (m *Manager) requestWhile(ctx context.Context, id holdstore.ID, ev event,
	done chan error, work func()) error {

	r := m.acquire(id)
	if r == nil {
		work()
		return errRunnerStopped
	}
	defer m.release(id)
	return r.requestWhile(ctx, ev, done, work)
}

// poke asks the hold's runner to look at its deadlines, waking it if
// parked.
func (m *Manager) poke(id holdstore.ID) {
	if r := m.acquire(id); r != nil {
		r.poke()
		m.release(id)
	}
}

// recheck asks the hold's runner to ask lnd what became of its hold
// invoice, waking it if parked.
func (m *Manager) recheck(id holdstore.ID) {
	if r := m.acquire(id); r != nil {
		r.recheck()
		m.release(id)
	}
}

// watchCircuits records the HTLCs lnd holds for the hold, from its
// ACCEPTED invoice: lnd's HTLC events name them when lnd fails them back.
// It confirms a recovered hold, and reports whether one of them already
// failed before it was recorded (the caller asks lnd again).
func (m *Manager) watchCircuits(id holdstore.ID, inv lnd.Invoice) (failed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.holds[id]
	if !ok {
		return false
	}
	t.circuits = t.circuits[:0]
	for _, htlc := range inv.HTLCs {
		if htlc.State != lnd.HTLCAccepted {
			continue
		}
		c := htlc.Circuit()
		t.circuits = append(t.circuits, c)
		m.circuits[c] = id
		if m.failedCircuits.has(c) {
			failed = true
		}
	}
	m.confirmLocked(t)
	return failed
}

// confirmLocked counts t as tracked again after a restart.
func (m *Manager) confirmLocked(t *tracked) {
	if !t.unconfirmed {
		return
	}
	t.unconfirmed = false
	m.untracked--
	m.metrics.untracked(m.untracked)
	if m.untracked == 0 && m.reconciled {
		m.closeTracked()
	}
}

// closeTracked closes Tracked() once. m.mu is held.
func (m *Manager) closeTracked() {
	select {
	case <-m.trackedCh:
	default:
		close(m.trackedCh)
		m.metrics.recovered(m.clock.Now().Sub(m.startedAt))
		m.log.Info("every hold tracked again",
			"after", m.clock.Now().Sub(m.startedAt))
	}
}

// circuitRing remembers the last failed HTLCs lnd reported that no hold
// had recorded yet: a hold that records one of them later (its ACCEPTED
// invoice and lnd's cancel crossed) asks lnd again at once.
type circuitRing struct {
	keys [256]lnd.CircuitKey
	next int
}

func (r *circuitRing) add(c lnd.CircuitKey) {
	r.keys[r.next%len(r.keys)] = c
	r.next++
}

func (r *circuitRing) has(c lnd.CircuitKey) bool {
	for i := 0; i < min(r.next, len(r.keys)); i++ {
		if r.keys[i] == c {
			return true
		}
	}
	return false
}
