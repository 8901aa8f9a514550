package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// Bounds of one payment's flow.
const (
	// soakPayTries is how many times alice pays a hold invoice whose
	// payment failed before bob held it (her channel to bob was down),
	// before her wallet cancels the payment.
	soakPayTries = 3

	// soakHeldWait bounds one of those tries. It outlasts lnd's hold of
	// an incomplete MPP set (invoices.DefaultHtlcHoldDuration, 120 s):
	// when bob's lnd refuses some parts and holds the others, alice's
	// payment fails only once lnd lets those go, and a wallet that gave
	// up sooner would never pay again (seed 1208, payments 623 and 773).
	soakHeldWait = 3 * time.Minute

	// soakPollEvery paces the flows' looks at bob and carol: dozens of
	// payments wait at once on two cores.
	soakPollEvery = 500 * time.Millisecond
)

// soakPoll is poll at the soak's pace.
func soakPoll(ctx context.Context, what string,
	check func(context.Context) (bool, error)) error {

	return await.Until(ctx, what, soakPollEvery, check, func(error) bool {
		return false
	})
}

// soakPaid is one payment's flow as its wallets saw it.
type soakPaid struct {
	i    int
	plan SoakPayment
	p    *senderclient.Payment // nil if never created
	hold onionmsg.HoldID

	// unborn: the create came back final, before any hold invoice.
	unborn bool

	// gaveUp: alice's payment never reached bob, and her wallet canceled
	// it.
	gaveUp bool

	// tries is how many times alice paid.
	tries int

	// released is when carol took dave's release; succeeded when alice's
	// lnd said her payment SUCCEEDED.
	released, succeeded time.Time

	// notes say what went wrong in the flow.
	notes []string
}

func (r *soakPaid) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// want is the fate the ledgers must show.
func (r *soakPaid) want() Fate {
	if r.gaveUp {
		return FateCanceled
	}

	return r.plan.Kind.want()
}

// pay makes payment i as its wallets would, calls done once its active part
// is over (created, paid, released: what is left is to wait), and waits
// until bob says it is final and resolved, or ctx ends.
func (s *soakRun) pay(ctx context.Context, i int, done func()) {
	r := &soakPaid{i: i, plan: s.plan.Payments[i]}
	s.mu.Lock()
	s.results[i] = r
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.live, i)
		s.mu.Unlock()
	}()
	var watch *PaymentWatch
	func() {
		defer done()
		actx, cancel := context.WithTimeout(ctx, soakPayTimeout)
		defer cancel()
		var err error
		if watch, err = s.start(actx, ctx, r); err != nil {
			r.note("%v", err)
			return
		}
		if err := s.act(actx, r); err != nil {
			r.note("%s: %v", r.plan.Kind, err)
		}
	}()
	if watch != nil {
		defer watch.Close()
	}
	if r.p == nil || r.unborn {
		return
	}

	p, err := s.waitPayment(ctx, r, "final and resolved",
		func(p *senderclient.Payment) (bool, error) {
			return p.State.Final() && p.Resolved, nil
		})
	if p != nil {
		r.p = p
	}
	if err != nil {
		r.note("%v", err)
		return
	}
	if p.State == senderclient.StateSettled && watch != nil {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if last, at, err := watch.Wait(wctx); err == nil &&
			last.Status == lnd.PaymentSucceeded {
			r.succeeded = at
		}
	}
	s.progress("payment %d (%s, %d msat): %s %s", i, r.plan.Kind,
		r.plan.Amount, p.State, p.Reason)
}

// start creates the payment and has alice pay it until bob holds it; it
// returns the watch of her last payment, which follows it for as long as
// watchCtx lasts (the payment's whole flow: it ends when she learns the
// outcome, long after ctx, the active part's).
func (s *soakRun) start(ctx, watchCtx context.Context,
	r *soakPaid) (*PaymentWatch, error) {
	c := s.c
	if r.plan.Kind == PayExpiring {
		if err := s.shortInvoice(ctx, r); err != nil {
			return nil, err
		}
	}
	p, err := c.CreateAs(ctx, s.wallets[r.plan.Sender], r.plan.Amount, "")
	if err != nil {
		return nil, err
	}
	r.p = p
	if r.hold, err = onionmsg.ParseHoldID(p.ID); err != nil {
		return nil, fmt.Errorf("hold id %q: %w", p.ID, err)
	}
	if p.State.Final() {
		r.unborn = true
		s.progress("payment %d: the create came back %s %q", r.i, p.State,
			p.Reason)
		return nil, nil
	}
	s.mu.Lock()
	s.live[r.i] = &soakLive{release: r.plan.Kind.released()}
	s.mu.Unlock()

	var watch *PaymentWatch
	for r.tries < soakPayTries {
		r.tries++
		if watch != nil {
			watch.Close()
		}
		if watch, err = c.AlicePays(watchCtx, p, r.plan.Shard); err != nil {
			return nil, err
		}
		held, err := s.waitHeld(ctx, r, watch)
		if err != nil {
			return watch, err
		}
		if held {
			return watch, nil
		}
		r.note("alice's payment %d failed (%s) before bob held it", r.tries,
			watch.Last().FailureReason)
		wctx, cancel := context.WithTimeout(ctx, soakHeldWait)
		_, err = c.Net.Alice.WaitChannel(wctx, c.Net.Bob, "active",
			func(ch lnd.Channel) bool { return ch.Active })
		cancel()
		if err != nil {
			return watch, err
		}
	}
	r.gaveUp = true
	s.mu.Lock()
	s.live[r.i].release = false
	s.mu.Unlock()

	return watch, s.cancel(ctx, r)
}

// waitHeld waits until bob holds the payment (true), or alice's payment
// failed (false).
func (s *soakRun) waitHeld(ctx context.Context, r *soakPaid,
	watch *PaymentWatch) (bool, error) {

	ctx, cancel := context.WithTimeout(ctx, soakHeldWait)
	defer cancel()
	held := false
	p, err := s.waitPayment(ctx, r, "held",
		func(p *senderclient.Payment) (bool, error) {
			if p.State != senderclient.StateCreated {
				held = true
				return true, nil
			}
			return watch.Last().Status == lnd.PaymentFailed, nil
		})
	if p != nil {
		r.p = p
	}
	switch {
	case err != nil && watch.Last().Status == lnd.PaymentFailed:
		// Bob did not answer at the end, but alice's payment failed:
		// pay again.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w (alice's payment: %s)", err,
			watch.Last().Status)
	}
	if held {
		s.mu.Lock()
		if l := s.live[r.i]; l != nil {
			l.deadline, l.expiry = p.DeadlineHeight, p.IncomingExpiry
		}
		s.mu.Unlock()
	}

	return held, nil
}

// act does what the plan says with a held payment: dave releases it at
// once or after a pause, or never.
func (s *soakRun) act(ctx context.Context, r *soakPaid) error {
	if r.p == nil || r.unborn || r.gaveUp || !r.plan.Kind.released() {
		return nil
	}
	it, err := s.item(ctx, r)
	if err != nil || it == nil || it.State != receiverclient.StatePending {
		return err
	}
	if !pause(ctx, r.plan.Pause) {
		return ctx.Err()
	}
	if _, err := s.c.Release(ctx, it); err != nil {
		return err
	}
	r.released = time.Now()

	return nil
}

// item waits until dave's mailbox at carol has the payment, whatever its
// state; nil if bob ended the payment before carol heard of it.
func (s *soakRun) item(ctx context.Context, r *soakPaid) (*receiverclient.Item, error) {
	var it *receiverclient.Item
	err := soakPoll(ctx, "dave's mailbox item "+r.hold.String(),
		func(ctx context.Context) (bool, error) {
			var err error
			it, err = s.c.Dave.Item(ctx, s.c.Bob.NodeKey, r.hold, 0, 0)
			if !receiverclient.IsCode(err, receiverclient.CodeNotFound) {
				return err == nil, err
			}
			p, perr := s.wallets[r.plan.Sender].Payment(ctx, r.p.ID)
			if perr == nil && p.State.Final() {
				r.p, it = p, nil
				return true, nil
			}
			return false, err
		})

	return it, err
}

// waitPayment polls bob's API, as the payment's wallet, until cond holds
// for it, and returns it as it was then.
func (s *soakRun) waitPayment(ctx context.Context, r *soakPaid, what string,
	cond func(*senderclient.Payment) (bool, error)) (*senderclient.Payment, error) {

	var last *senderclient.Payment
	err := soakPoll(ctx, "payment "+r.p.ID+" "+what, func(ctx context.Context) (bool, error) {
		p, err := s.wallets[r.plan.Sender].Payment(ctx, r.p.ID)
		if err != nil {
			return false, err
		}
		last = p
		return cond(p)
	})

	return last, err
}

// cancel has the payment's wallet cancel it, again while bob answers 503
// or not at all.
func (s *soakRun) cancel(ctx context.Context, r *soakPaid) error {
	w := s.wallets[r.plan.Sender]
	return await.Until(ctx, "the cancel of "+r.p.ID, 250*time.Millisecond,
		func(ctx context.Context) (bool, error) {
			_, err := w.Cancel(ctx, r.p.ID)
			return err == nil, err
		}, func(err error) bool { return !senderclient.Retryable(err) })
}

// shortInvoice has dave make an invoice of exactly the payment's amount
// that expires soakInvoiceLife from now, and upload it to carol, again
// while she is unavailable: the create gets it, as no other invoice has
// that amount. An invoice made while carol's lnd was away has no route
// hint through her (dave's channel was inactive): he makes another.
func (s *soakRun) shortInvoice(ctx context.Context, r *soakPaid) error {
	return await.Until(ctx, "carol takes dave's short-lived invoice",
		time.Second, func(ctx context.Context) (bool, error) {
			inv, err := InvoiceMaker{s.c.Net.Dave.Client}.MakeInvoice(ctx,
				r.plan.Amount, soakInvoiceLife)
			if err != nil {
				return false, fmt.Errorf("dave's short-lived invoice: %w", err)
			}
			up, err := s.c.Dave.Upload(ctx, []string{inv})
			switch {
			case err != nil:
				return false, err
			case up.Accepted == 1:
				return true, nil
			case len(up.Results) == 1 &&
				up.Results[0].Reason == receiverclient.RejectNoRouteHint:
				return false, fmt.Errorf("carol refused it: %s",
					up.Results[0].Message)
			}
			return false, fmt.Errorf("%w: carol refused it: %+v", errRefused,
				up.Results)
		}, func(err error) bool {
			return errors.Is(err, errRefused) ||
				(!receiverclient.Retryable(err) && !strings.HasPrefix(
					err.Error(), "carol refused it"))
		})
}

// errRefused: an answer that retrying will not change.
var errRefused = errors.New("refused")
