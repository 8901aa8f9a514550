package scenarios

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	"github.com/asynclsp/asynclsp/scenarios/lsp"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// check judges the run once both daemons are back: every payment final
// and resolved at bob, the ledgers clean, every mailbox item final and
// agreeing. It lists every disagreement, then fails if there was any.
func (k *killsRun) check(t *testing.T, ctx context.Context, results []*paid,
	before Balances) {

	t.Helper()
	c := k.c
	var bad []string
	disagree := func(format string, args ...any) {
		bad = append(bad, fmt.Sprintf(format, args...))
	}

	// Bob's word on each payment.
	bobBudget := newBudget(killsCheckBudget)
	var sent []Sent
	for _, r := range results {
		for _, n := range r.notes {
			disagree("payment %d (%s): %s", r.i, r.plan.fate, n)
		}
		if r.p == nil {
			continue
		}
		wctx, cancel := bobBudget.ctx(ctx)
		p, err := c.WaitPayment(wctx, r.p.ID, "final and resolved",
			func(p *senderclient.Payment) (bool, error) {
				return p.State.Final() && p.Resolved, nil
			})
		cancel()
		if p != nil {
			r.p = p
		}
		if err != nil {
			disagree("payment %d (%s) at bob: %v", r.i, r.plan.fate, err)
		}
		if want := r.state(); want != "" && r.p.State != want {
			disagree("payment %d (%s) is %s %q at bob, want %s", r.i,
				r.plan.fate, r.p.State, r.p.Reason, want)
		}
		if r.unborn {
			continue // no hold invoice: nothing for the ledgers
		}
		hash, err := Hash(r.p)
		must(t, err)
		sent = append(sent, Sent{Hash: hash, Want: r.plan.fate.want(),
			AmountMsat: r.plan.amount,
			FeeMsat:    lnwire.MilliSatoshi(r.p.FeeMsat)})
	}

	// Every lnd's ledger.
	if err := c.Net.WaitNoPendingHTLCs(ctx); err != nil {
		disagree("HTLCs pending: %v", err)
	}
	report, err := c.Judge(ctx, Run{Sent: sent, Before: before})
	must(t, err)
	t.Logf("the ledgers show: %s", report)
	for _, v := range report.Violations {
		disagree("ledgers: %s", v)
	}
	fates := map[string]Fate{}
	for _, v := range report.Payments {
		fates[v.Hash.String()] = v.Fate
	}

	// Dave's mailbox at carol, once the bus has handed her everything
	// (a held message redelivered after a kill comes back only after
	// her ack wait).
	if err := k.drained(ctx); err != nil {
		disagree("%v", err)
	}
	itemBudget := newBudget(killsCheckBudget)
	noItem := 0
	for _, r := range results {
		if r.p == nil {
			continue
		}
		wctx, cancel := itemBudget.ctx(ctx)
		it, err := k.finalItem(wctx, r.hold)
		cancel()
		lnd := fates[r.p.PaymentHash]
		switch {
		case receiverclient.IsCode(err, receiverclient.CodeNotFound) &&
			r.mayHaveNoItem():
			// Canceled before carol heard of it: her tombstone
			// keeps it out of the mailbox.
			noItem++
			continue
		case err != nil:
			disagree("payment %d (%s): dave's mailbox item: %v", r.i,
				r.plan.fate, err)
			continue
		}
		if r.unborn {
			lnd = FateCanceled // never paid: nothing in the ledgers
		}
		if !itemAgrees(it, r.p, lnd) {
			disagree("payment %d (%s): dave's mailbox item is %s %q, bob "+
				"says %s %q, lnd %s", r.i, r.plan.fate, it.State, it.Reason,
				r.p.State, r.p.Reason, lnd)
		}
		t.Logf("payment %d (%s, %d msat): bob %s %s, dave %s, lnd %s, "+
			"in %v", r.i, r.plan.fate, r.plan.amount, r.p.State, r.p.Reason,
			it.State, lnd, r.took.Round(time.Millisecond))
	}
	pending, err := c.Dave.Mailbox(ctx)
	if err != nil {
		disagree("dave's mailbox: %v", err)
	}
	for _, it := range pending {
		disagree("pending in dave's mailbox after the run: hold %s",
			it.HoldID)
	}

	t.Logf("%d payments, %d faults; %d canceled before carol heard of them",
		len(k.plan.payments), len(k.plan.faults), noItem)
	if len(bad) > 0 {
		t.Fatalf("%d disagreements:\n  %s", len(bad),
			strings.Join(bad, "\n  "))
	}
}

// killsCheckBudget bounds each kind of final check over all payments: a
// stuck payment costs the checks after it no more than a short look.
const killsCheckBudget = 2 * time.Minute

// budget is a deadline shared by a series of waits.
type budget struct{ end time.Time }

func newBudget(d time.Duration) *budget { return &budget{time.Now().Add(d)} }

// ctx is a context for the next wait: until the budget's end, but at
// least a short look.
func (b *budget) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(5*time.Second, time.Until(b.end)))
}

// drained waits until neither daemon's consumer on bob's NATS server has a
// message left to deliver or waiting for its ack.
func (k *killsRun) drained(ctx context.Context) error {
	nc, err := nats.Connect(k.c.Bob.NATSURL,
		nats.Name("scenarios: observer"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for _, d := range []*lsp.Daemon{k.c.Bob, k.c.Carol} {
		var last string
		err := poll(ctx, d.Name+"'s inbound messages handled",
			func(ctx context.Context) (bool, error) {
				cons, err := js.Consumer(ctx,
					bus.StreamName(bus.NodeKey(d.NodeKey)),
					bus.ConsumerName)
				if err != nil {
					return false, err
				}
				info, err := cons.Info(ctx)
				if err != nil {
					return false, err
				}
				last = fmt.Sprintf("%d pending, %d waiting for an ack",
					info.NumPending, info.NumAckPending)
				return info.NumPending == 0 && info.NumAckPending == 0, nil
			})
		if err != nil {
			return fmt.Errorf("%w (%s)", err, last)
		}
	}

	return nil
}

// finalItem waits, long-polling, until dave's mailbox item for hold is
// final, and returns it; when ctx ends, it returns the item as it last was
// with the error.
func (k *killsRun) finalItem(ctx context.Context,
	hold onionmsg.HoldID) (*receiverclient.Item, error) {

	var it *receiverclient.Item
	err := await.Until(ctx, "dave's mailbox item "+hold.String()+" final",
		PollInterval, func(ctx context.Context) (bool, error) {
			cur, err := k.c.Dave.Item(ctx, k.c.Bob.NodeKey, hold, 0,
				10*time.Second)
			if err != nil {
				return false, err
			}
			it = cur
			return receiverclient.FinalState(it.State), nil
		}, func(err error) bool {
			return receiverclient.IsCode(err, receiverclient.CodeNotFound)
		})
	if err != nil && it != nil {
		return it, fmt.Errorf("%w (last %s %q)", err, it.State, it.Reason)
	}

	return it, err
}

// itemAgrees reports whether dave's mailbox item says what bob and the
// ledgers say: settled, or canceled with bob's reason.
func itemAgrees(it *receiverclient.Item, p *senderclient.Payment,
	lnd Fate) bool {

	switch it.State {
	case receiverclient.StateSettled:
		return p.State == senderclient.StateSettled && lnd == FateSettled
	case receiverclient.StateCanceled:
		return p.State == senderclient.StateCanceled &&
			it.Reason == p.Reason && lnd == FateCanceled
	}

	return false
}
