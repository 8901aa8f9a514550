package scenarios

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// Deadlines of TestRandomKills.
const (
	// killsTimeout bounds the run, from the first payment to the last
	// check, with killsTimeoutPerPayment more for each payment: a longer
	// run by hand gets the time it needs.
	killsTimeout           = 5 * time.Minute
	killsTimeoutPerPayment = 5 * time.Second

	// killsPaymentTimeout bounds one payment, from its create until bob
	// says it is final and resolved.
	killsPaymentTimeout = 3 * time.Minute

	// killsRetryWait paces alice's wallet's cancel while bob answers 503
	// or not at all.
	killsRetryWait = 250 * time.Millisecond
)

// TestRandomKills is issue 20's soak, small enough for make test: a stream
// of async payments, each with a fate drawn from a seed (released at once
// or after a pause, canceled by alice's wallet once dave's mailbox lists
// it or the moment bob holds it, released and canceled at the same
// moment), while a fault injector SIGKILLs bob's or carol's asynclspd, or
// both, at moments drawn from the same seed, and restarts them. Both
// wallets follow the client retry rules. Once both daemons are back,
// every payment must be final and resolved at bob, every lnd's ledger
// must show nothing lost, paid twice, stuck or force-closed and every
// balance right to the msat, and every mailbox item at carol must be final
// and agree with bob and lnd. Every disagreement is counted and listed.
//
// $ASYNCLSP_KILLS_SEED replays a run's plan (the timing is real);
// $ASYNCLSP_KILLS_PAYMENTS and $ASYNCLSP_KILLS_KILLS size a longer run.
func TestRandomKills(t *testing.T) {
	seed := envUint(t, killsSeedEnv, uint64(time.Now().UnixNano()))
	nPay := int(envUint(t, killsPaymentsEnv, defaultKillsPayments))
	nKill := int(envUint(t, killsKillsEnv, defaultKills))
	if nPay < 1 {
		t.Fatalf("$%s must be at least 1", killsPaymentsEnv)
	}
	plan := newKillsPlan(seed, nPay, nKill)
	t.Logf("seed %d (replay: %s=%d): %s", seed, killsSeedEnv, seed, plan)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with %s=%d %s=%d %s=%d", killsSeedEnv, seed,
				killsPaymentsEnv, nPay, killsKillsEnv, nKill)
		}
	})

	// A create whose answer a kill lost may leave an invoice reserved
	// at carol: dave uploads some to spare.
	c := newCast(t, regtest.Options{}, Options{Invoices: nPay + 2*nKill + 4})
	timed(t)
	ctx := testCtx(t, killsTimeout+time.Duration(nPay)*killsTimeoutPerPayment)
	before, err := c.Balances(ctx)
	must(t, err)

	k := &killsRun{c: c, plan: plan, t0: time.Now(), log: t.Logf}
	results := k.run(ctx)
	k.check(t, ctx, results, before)
}

// killsRun is one run of TestRandomKills.
type killsRun struct {
	c    *Cast
	plan killsPlan
	t0   time.Time
	log  func(format string, args ...any)

	// started counts the payments begun, for the injector.
	started atomic.Int64
}

// paid is what became of one payment in its wallets' hands.
type paid struct {
	i    int
	plan plannedPayment
	p    *senderclient.Payment // nil if never created
	hold onionmsg.HoldID

	// unborn: the create came back canceled: a crash cut the first
	// attempt short before lnd made the hold invoice, and bob canceled
	// the hold. There was nothing to pay.
	unborn bool

	// took is how long its flow took; notes what went wrong in it.
	took  time.Duration
	notes []string
}

// state is the state bob must end the payment in; empty for either.
func (r *paid) state() senderclient.State {
	if r.unborn {
		return senderclient.StateCanceled
	}

	return r.plan.fate.state()
}

// mayHaveNoItem reports whether dave's mailbox may never have had the
// payment: canceled before bob told carol of it (her tombstone keeps it
// out).
func (r *paid) mayHaveNoItem() bool {
	return r.p.State == senderclient.StateCanceled &&
		(r.unborn || r.plan.fate == fateCancelEarly)
}

func (r *paid) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// run makes the payments, killsInFlight at a time, while the injector
// strikes; it returns once every payment's flow ended and both daemons
// are back.
func (k *killsRun) run(ctx context.Context) []*paid {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	injected := make(chan error, 1)
	go func() { injected <- k.inject(ctx) }()

	results := make([]*paid, len(k.plan.payments))
	next := make(chan int)
	var wg sync.WaitGroup
	for range killsInFlight {
		wg.Go(func() {
			for i := range next {
				results[i] = k.pay(ctx, i)
			}
		})
	}
	for i := range results {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := <-injected; err != nil {
		// Reported with the payments: the run goes on to the checks.
		results = append(results, &paid{i: -1, notes: []string{
			"fault injector: " + err.Error()}})
	}

	return results
}

// inject strikes the plan's faults in turn, each once enough payments have
// started, and restarts what it killed. Whatever happens, it leaves both
// daemons running.
func (k *killsRun) inject(ctx context.Context) (err error) {
	c := k.c
	daemons := map[string]struct {
		kill    func() error
		restart func(context.Context) error
		running func() bool
	}{
		regtest.Bob:   {c.Bob.Kill, c.RestartBob, c.Bob.Running},
		regtest.Carol: {c.Carol.Kill, c.RestartCarol, c.Carol.Running},
	}
	defer func() {
		// Back up whatever a failure left down, bob first (carol needs
		// his NATS server), even if the run's time is up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx),
			2*time.Minute)
		defer cancel()
		for _, name := range []string{regtest.Bob, regtest.Carol} {
			if d := daemons[name]; !d.running() {
				err = errors.Join(err, d.restart(ctx))
			}
		}
	}()
	for n, f := range k.plan.faults {
		err := poll(ctx, fmt.Sprintf("%d payments started", f.after),
			func(context.Context) (bool, error) {
				return k.started.Load() >= int64(f.after), nil
			})
		if err != nil {
			return err
		}
		// The injected fault's timing: real pauses.
		if !pause(ctx, f.wait) {
			return ctx.Err()
		}
		struck := time.Since(k.t0)
		for i, name := range f.kill {
			if i > 0 && !pause(ctx, f.gap) {
				return ctx.Err()
			}
			if err := daemons[name].kill(); err != nil {
				return fmt.Errorf("fault %d: %w", n+1, err)
			}
		}
		if !pause(ctx, f.down) {
			return ctx.Err()
		}
		back := time.Now()
		for _, name := range f.restart {
			if err := daemons[name].restart(ctx); err != nil {
				return fmt.Errorf("fault %d: restart %s: %w", n+1, name,
					err)
			}
		}
		k.log("t+%v fault %d (%s), %d payments started: back in %v",
			struck.Round(time.Millisecond), n+1, f, k.started.Load(),
			time.Since(back).Round(time.Millisecond))
	}

	return nil
}

// pay makes payment i as its wallets would, to the end of its plan, and
// waits until bob says it is final and resolved.
func (k *killsRun) pay(ctx context.Context, i int) *paid {
	k.started.Add(1)
	start := time.Now()
	r := &paid{i: i, plan: k.plan.payments[i]}
	defer func() { r.took = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, killsPaymentTimeout)
	defer cancel()
	c := k.c

	p, err := c.Create(ctx, r.plan.amount, "")
	if err != nil {
		r.note("%v", err)
		return r
	}
	r.p = p
	if r.hold, err = onionmsg.ParseHoldID(p.ID); err != nil {
		r.note("hold id %q: %v", p.ID, err)
		return r
	}
	if p.State.Final() {
		r.unborn = true
		k.log("payment %d: the create came back %s %q", i, p.State,
			p.Reason)
		return r
	}
	watch, err := c.AlicePays(ctx, p, 0)
	if err != nil {
		r.note("%v", err)
		return r
	}
	defer watch.Close()
	if _, err := c.WaitState(ctx, p.ID, senderclient.StateHeld); err != nil {
		r.note("%v", err)
		return r
	}
	if err := k.act(ctx, r); err != nil {
		r.note("%s: %v", r.plan.fate, err)
	}
	p, err = c.WaitPayment(ctx, p.ID, "final and resolved",
		func(p *senderclient.Payment) (bool, error) {
			return p.State.Final() && p.Resolved, nil
		})
	if p != nil {
		r.p = p
	}
	if err != nil {
		r.note("%v", err)
	}

	return r
}

// act does what the plan says with a held payment.
func (k *killsRun) act(ctx context.Context, r *paid) error {
	c := k.c
	if r.plan.fate == fateCancelEarly {
		return k.cancel(ctx, r.p.ID)
	}
	it, err := k.item(ctx, r.hold)
	if err != nil {
		return err
	}
	if !pause(ctx, r.plan.pause) {
		return ctx.Err()
	}
	switch r.plan.fate {
	case fateRelease, fateReleaseLater:
		_, err := c.Release(ctx, it)
		return err
	case fateCancel:
		return k.cancel(ctx, r.p.ID)
	}

	// fateRace: signed first, so that the post and the cancel leave
	// together.
	rel, err := c.SignRelease(ctx, it)
	if err != nil {
		return err
	}
	var relErr error
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		_, relErr = c.Dave.PostReleaseRetry(ctx, rel)
	}()
	cancelErr := k.cancel(ctx, r.p.ID)
	<-posted
	// Either may lose: a release for an item already canceled is a
	// conflict, a cancel of a payment being paid is refused.
	if receiverclient.IsCode(relErr, receiverclient.CodeConflict) {
		relErr = nil
	}
	if errors.Is(cancelErr, senderclient.CodeNotCancelable) {
		cancelErr = nil
	}

	return errors.Join(relErr, cancelErr)
}

// item waits until dave's mailbox at carol has hold, whatever its state.
func (k *killsRun) item(ctx context.Context,
	hold onionmsg.HoldID) (*receiverclient.Item, error) {

	var it *receiverclient.Item
	err := poll(ctx, "dave's mailbox item "+hold.String(),
		func(ctx context.Context) (bool, error) {
			var err error
			it, err = k.c.Dave.Item(ctx, k.c.Bob.NodeKey, hold, 0, 0)
			return err == nil, err
		})

	return it, err
}

// cancel has alice's wallet cancel payment id as a wallet should: again
// while bob answers 503 or not at all (a cancel is idempotent).
func (k *killsRun) cancel(ctx context.Context, id string) error {
	return await.Until(ctx, "alice's cancel of "+id, killsRetryWait,
		func(ctx context.Context) (bool, error) {
			_, err := k.c.Wallet.Cancel(ctx, id)
			return err == nil, err
		}, func(err error) bool { return !senderclient.Retryable(err) })
}
