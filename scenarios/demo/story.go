package demo

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// blocksPassing is how many blocks are mined while the payment is held.
const blocksPassing = 6

// tellStory is the async payment, step by step, each step checked.
func tellStory(ctx context.Context, t *teller, c *scenarios.Cast,
	amount lnwire.MilliSatoshi) error {

	net := c.Net
	t.heading("The story")
	before, err := c.Balances(ctx)
	if err != nil {
		return err
	}

	t.say("dave goes offline: his lnd stops")
	if err := net.Dave.Stop(ctx); err != nil {
		return err
	}

	t.say("alice's wallet asks bob to pay dave %s", sat(int64(amount)))
	step := time.Now()
	p, err := c.Create(ctx, amount, "")
	if err != nil {
		return err
	}
	hash, err := scenarios.Hash(p)
	if err != nil {
		return err
	}
	t.detail("in %s bob got one of dave's invoices from carol over NATS "+
		"and made a hold invoice on its payment hash %s", millis(time.Since(step)),
		hash)
	t.detail("the hold invoice asks %s: the amount and bob's fee of %s",
		sat(int64(p.HoldAmountMsat)), sat(int64(p.FeeMsat)))

	t.say("alice's lnd pays the hold invoice")
	pay, err := c.AlicePays(ctx, p, 0)
	if err != nil {
		return err
	}
	defer pay.Close()
	held, err := c.WaitState(ctx, p.ID, senderclient.StateHeld)
	if err != nil {
		return err
	}
	height, err := net.Height(ctx)
	if err != nil {
		return err
	}
	t.say("bob holds alice's HTLC: HELD %s after alice started paying",
		secs(time.Since(pay.Started)))
	t.detail("the HTLC expires at block %d (now %d); if dave has not "+
		"released it by block %d, bob cancels it and alice's funds come back",
		held.IncomingExpiry, height, held.DeadlineHeight)

	item, err := c.WaitItem(ctx, hash)
	if err != nil {
		return err
	}
	if item.ReleaseSecret != (receiverclient.Hex32{}) {
		t.say("carol's mailbox for dave holds it: %s, hold %s, release secret %s…",
			sat(int64(item.AmountMsat)), item.HoldID, item.ReleaseSecret.String()[:16])
	} else {
		t.say("carol's mailbox for dave holds it (as her operator sees it): "+
			"%s, hold %s, until block %d", sat(int64(item.AmountMsat)),
			item.HoldID, item.DeadlineHeight)
	}
	hook, _, err := c.Hooks.Wait(ctx, receiverclient.MethodPaymentIncoming, 0)
	if err != nil {
		return err
	}
	t.say("a webhook wakes dave's wallet: %s, %s after bob held the payment",
		hook.Method, millis(hook.At.Sub(held.UpdatedAt)))
	t.check(len(c.Hooks.Refused()) == 0, "it is bLIP-55's: carol's ln_signature "+
		"over the spec's message verifies (a validator written from the spec)")

	t.say("%d blocks pass", blocksPassing)
	if err := net.Mine(ctx, blocksPassing); err != nil {
		return err
	}
	now, err := c.Wallet.Payment(ctx, p.ID)
	if err != nil {
		return err
	}
	t.check(now.State == senderclient.StateHeld, "the payment is still %s "+
		"at block %d", now.State, height+blocksPassing)
	t.check(pay.Last().Status == lnd.PaymentInFlight, "alice's payment is "+
		"%s: her funds are locked in the HTLC with bob, nowhere else",
		pay.Last().Status)

	t.say("dave comes back online")
	step = time.Now()
	if err := net.Dave.Start(ctx); err != nil {
		return err
	}
	t.detail("his lnd is up and its channel with carol active in %s",
		secs(time.Since(step)))
	if c.Stock != nil {
		if err := c.RedialStock(ctx); err != nil {
			return err
		}
	}
	items, err := c.Receiver.Mailbox(ctx)
	if err != nil {
		return err
	}
	if c.Stock != nil {
		t.say("dave's wallet reads his mailbox at carol over LSPS0 "+
			"(asynclsp.list_mailbox): %d payment waiting, with the text to sign",
			len(items))
	} else {
		t.say("dave's wallet reads his mailbox at carol: %d payment waiting",
			len(items))
	}
	rel, err := c.Receiver.SignRelease(ctx, item)
	if err != nil {
		return err
	}
	t.say("dave's lnd signs the release with his node key: %s", c.Receiver.Signs())
	if rel.Text != "" {
		t.detail("%.90s…", rel.Text)
	}
	posted := time.Now()
	it, err := c.Receiver.PostRelease(ctx, rel)
	if err != nil {
		return err
	}
	t.say("dave's wallet hands it to carol, who checks it and relays it to " +
		"bob over NATS")

	done, at, err := pay.Wait(ctx)
	if err != nil {
		return err
	}
	t.say("alice's payment %s %s after the release", done.Status,
		secs(at.Sub(posted)))
	t.check(done.Status == lnd.PaymentSucceeded && done.Preimage.Hash() == hash,
		"alice holds the preimage of dave's payment hash: her receipt")
	settled, err := c.WaitState(ctx, p.ID, senderclient.StateSettled)
	if err != nil {
		return err
	}
	t.check(settled.Settled, "bob's API says %s", settled.State)
	if it, err = c.Receiver.WaitOutcome(ctx, it); err != nil {
		return err
	}
	t.check(it.State == receiverclient.StateSettled, "carol's mailbox says %s",
		it.State)
	inv, err := net.Dave.Client.LookupInvoice(ctx, hash)
	if err != nil {
		return err
	}
	t.check(inv.State == lnd.InvoiceSettled, "dave's invoice on his own lnd "+
		"is %s", inv.State)

	return tellBalances(ctx, t, c, before, settled, hash)
}

// tellBalances shows what moved and checks it is what one settled payment
// moves.
func tellBalances(ctx context.Context, t *teller, c *scenarios.Cast,
	before scenarios.Balances, p *senderclient.Payment,
	hash [32]byte) error {

	err := c.Net.WaitNoPendingHTLCs(ctx)
	t.check(err == nil, "no HTLC is pending on any channel")
	out, err := c.BobsPayment(ctx, hash)
	if err != nil {
		return err
	}
	after, err := c.Balances(ctx)
	if err != nil {
		return err
	}
	want := scenarios.Settled(int64(p.AmountMsat), int64(p.FeeMsat),
		int64(out.FeeMsat))
	moved := after.Minus(before)

	t.say("channel balances (what each node can spend):")
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tbefore\tafter\tmoved\texpected\t")
	for _, n := range c.Net.Nodes() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", n.Name,
			sat(before[n.Name]), sat(after[n.Name]),
			signedSat(moved[n.Name]), signedSat(want[n.Name]))
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		t.detail("%s", line)
	}
	t.detail("expected: alice pays the amount and bob's fee (%s); bob "+
		"keeps his fee less the %s routing fee he paid carol; dave gets "+
		"the amount", sat(int64(p.FeeMsat)), sat(int64(out.FeeMsat)))
	t.check(moved.Equal(want), "the money moved exactly once")

	return nil
}
