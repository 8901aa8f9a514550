package scenarios

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/internal/await"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// PollInterval is how often the steps look again while they wait.
const PollInterval = 20 * time.Millisecond

// ReleaseTTL is how long dave's releases are valid.
const ReleaseTTL = 10 * time.Minute

// ErrWrongState: a payment reached a final state other than the one waited
// for.
var ErrWrongState = errors.New("payment ended in another state")

// Create has alice's wallet backend ask bob to pay dave amount (policy
// "patient", "fast-fail", or "" for bob's default), as a wallet should:
// with an idempotency key of its own, retried while bob answers 503 or
// not at all (senderclient.CreatePaymentRetry). The payment is recorded
// for the judge (Sent).
func (c *Cast) Create(ctx context.Context, amount lnwire.MilliSatoshi,
	policy string) (*senderclient.Payment, error) {

	return c.CreateAs(ctx, c.Wallet, amount, policy)
}

// CreateAs is Create by another wallet backend at bob (Bob.SenderClient):
// one of several senders.
func (c *Cast) CreateAs(ctx context.Context, wallet *senderclient.Client,
	amount lnwire.MilliSatoshi, policy string) (*senderclient.Payment, error) {

	p, _, err := wallet.CreatePaymentRetry(ctx, senderclient.CreatePaymentRequest{
		ReceiverKey:    c.DaveKey.String(),
		ReceiverLSP:    c.Carol.NodeKey.String(),
		AmountMsat:     uint64(amount),
		RetryPolicy:    policy,
		IdempotencyKey: rand.Text(),
	})
	if err != nil {
		return nil, fmt.Errorf("create payment of %d msat: %w", amount, err)
	}
	if err := c.record(p); err != nil {
		return nil, err
	}

	return p, nil
}

// AlicePays has alice's lnd pay the hold invoice of p, in shards of at
// most maxShard (0: as lnd likes), and follows the payment.
func (c *Cast) AlicePays(ctx context.Context, p *senderclient.Payment,
	maxShard lnwire.MilliSatoshi) (*PaymentWatch, error) {

	started := time.Now()
	sub, err := c.Net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice:          p.HoldInvoice,
		MaxShardSizeMsat: maxShard,
		Timeout:          time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("alice pays the hold invoice: %w", err)
	}

	return WatchPayment(sub, started), nil
}

// Hash returns a payment's hash.
func Hash(p *senderclient.Payment) (lntypes.Hash, error) {
	return lntypes.MakeHashFromStr(p.PaymentHash)
}

// WaitState polls bob's API until payment id is in state want, and returns
// it. It fails with ErrWrongState as soon as the payment is final in
// another state.
func (c *Cast) WaitState(ctx context.Context, id string,
	want senderclient.State) (*senderclient.Payment, error) {

	return c.WaitPayment(ctx, id, string(want),
		func(p *senderclient.Payment) (bool, error) {
			switch {
			case p.State == want:
				return true, nil
			case p.State.Final():
				return false, fmt.Errorf("%w: %s (%s), want %s",
					ErrWrongState, p.State, p.Reason, want)
			}

			return false, nil
		})
}

// WaitPayment polls bob's API until cond holds for payment id (what names
// it in errors), and returns the payment as it was then.
func (c *Cast) WaitPayment(ctx context.Context, id, what string,
	cond func(*senderclient.Payment) (bool, error)) (*senderclient.Payment, error) {

	var last *senderclient.Payment
	err := poll(ctx, "payment "+id+" "+what, func(ctx context.Context) (bool, error) {
		p, err := c.Wallet.Payment(ctx, id)
		if err != nil {
			return false, err
		}
		last = p
		return cond(p)
	})

	return last, err
}

// WaitItem waits until dave's mailbox at carol lists the held payment with
// hash, and returns it. With a stock wallet, which reaches carol only
// while dave's lnd is up, it is read through carol's admin API (as her
// operator sees it: no release secret, no text to sign); the wallet reads
// the rest itself when it signs.
func (c *Cast) WaitItem(ctx context.Context,
	hash lntypes.Hash) (*receiverclient.Item, error) {

	mailbox := c.Receiver.Mailbox
	if c.Stock != nil {
		mailbox = c.carolsViewOfDave
	}
	var item *receiverclient.Item
	err := poll(ctx, "dave's mailbox item "+hash.String(), func(ctx context.Context) (bool, error) {
		items, err := mailbox(ctx)
		if err != nil {
			return false, err
		}
		i := slices.IndexFunc(items, func(it receiverclient.Item) bool {
			return lntypes.Hash(it.PaymentHash) == hash
		})
		if i < 0 {
			return false, nil
		}
		item = &items[i]
		return true, nil
	})

	return item, err
}

// carolsViewOfDave lists dave's pending items through carol's admin API.
func (c *Cast) carolsViewOfDave(ctx context.Context) ([]receiverclient.Item, error) {
	admin, err := c.Carol.AdminClient()
	if err != nil {
		return nil, err
	}
	page, err := admin.Mailbox(ctx, adminclient.MailboxOptions{
		Receiver: c.DaveKey.String(), States: []string{"pending"},
	})
	if err != nil {
		return nil, err
	}
	items := make([]receiverclient.Item, 0, len(page.Items))
	for _, a := range page.Items {
		it := receiverclient.Item{AmountMsat: lnwire.MilliSatoshi(a.AmountMsat),
			DeadlineHeight: a.DeadlineHeight, State: a.State, Version: a.Version}
		sender, err1 := onionmsg.ParseNodeKey(a.SenderLSP)
		hold, err2 := onionmsg.ParseHoldID(a.HoldID)
		hash, err3 := lntypes.MakeHashFromStr(a.PaymentHash)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("carol's admin mailbox item %+v: %w", a, err)
		}
		it.SenderLSP, it.HoldID, it.ReceiverKey = sender, hold, c.DaveKey
		it.PaymentHash = receiverclient.Hex32(hash)
		items = append(items, it)
	}

	return items, nil
}

// SignRelease has dave's lnd sign a release of it valid for ReleaseTTL, and
// returns its hex as a wallet posts it.
func (c *Cast) SignRelease(ctx context.Context,
	it *receiverclient.Item) (string, error) {

	return SignReleaseWith(ctx, it, c.Net.Dave.Client)
}

// Release has dave's wallet sign a release of it and hand it to carol as a
// wallet should: again while carol answers 503 or not at all. It returns
// the item as carol answered.
func (c *Cast) Release(ctx context.Context,
	it *receiverclient.Item) (*receiverclient.Item, error) {

	rel, err := c.Receiver.SignRelease(ctx, it)
	if err != nil {
		return nil, err
	}

	return c.Receiver.PostRelease(ctx, rel)
}

// SignReleaseWith signs a release of it with signer, which need not hold
// dave's key (a forgery).
func SignReleaseWith(ctx context.Context, it *receiverclient.Item,
	signer onionmsg.Signer) (string, error) {

	return signReleaseFor(ctx, it, signer, ReleaseTTL)
}

// signReleaseFor signs a release of it with signer, valid for ttl from
// now, and returns its hex.
func signReleaseFor(ctx context.Context, it *receiverclient.Item,
	signer onionmsg.Signer, ttl time.Duration) (string, error) {

	rel := onionmsg.NewRelease(it.Held(), time.Now(), ttl)
	if err := rel.Sign(ctx, signer); err != nil {
		return "", err
	}
	raw, err := rel.Encode()
	if err != nil {
		return "", err
	}

	return fmt.Sprintf("%x", raw), nil
}

// poll calls check until it reports true or an error, or ctx ends; the
// error then names what was awaited and why it was not there yet.
func poll(ctx context.Context, what string,
	check func(context.Context) (bool, error)) error {
	return await.Until(ctx, what, PollInterval, check, func(err error) bool {
		return errors.Is(err, ErrWrongState)
	})
}

// BobsPayment returns bob's lnd's outbound payment for hash as it is now:
// its status, fee and parts.
func (c *Cast) BobsPayment(ctx context.Context, hash lntypes.Hash) (lnd.Payment, error) {
	sub, err := c.Net.Bob.Client.TrackPayment(ctx, hash)
	if err != nil {
		return lnd.Payment{}, fmt.Errorf("bob's payment %s: %w", hash, err)
	}
	defer sub.Close()
	select {
	case p, ok := <-sub.Updates():
		if !ok {
			return lnd.Payment{}, fmt.Errorf("bob's payment %s: %w", hash,
				sub.Err())
		}
		return p, nil
	case <-ctx.Done():
		return lnd.Payment{}, ctx.Err()
	}
}
