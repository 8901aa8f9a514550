package lnd_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/lnwire"
)

// testBasics: node info, heights, block epochs, channels, balances, an
// invoice of dave's with route hints that alice can decode, and a payment
// dave makes out of his pushed balance.
func testBasics(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	tip, err := net.Height(ctx)
	must(t, err)

	for _, node := range net.Nodes() {
		info, err := node.Client.NodeInfo(ctx)
		must(t, err)
		if info.PubKey != node.PubKey || info.Alias != node.Name ||
			!info.SyncedToChain || info.BlockHeight != tip {

			t.Fatalf("%s: info %+v, want pubkey %v, synced at %d",
				node.Name, info, node.PubKey, tip)
		}
		if node.Client.PubKey() != node.PubKey {
			t.Fatalf("%s: client pubkey %v", node.Name,
				node.Client.PubKey())
		}
	}

	chans, err := net.Bob.Client.ListChannels(ctx)
	must(t, err)
	if len(chans) != 2 {
		t.Fatalf("bob has %d channels, want 2", len(chans))
	}
	for _, c := range chans {
		if !c.Active || c.Private || c.PendingHTLCs() != 0 ||
			c.MaxIncomingHTLCs == 0 || c.MaxOutgoingHTLCs == 0 ||
			c.FreeOutgoingSlots() != int(c.MaxOutgoingHTLCs) {

			t.Fatalf("bob's channel: %+v", c)
		}
	}
	daveSide, err := net.Dave.Channel(ctx, net.Carol)
	must(t, err)
	if !daveSide.Private || daveSide.Capacity != regtest.DefaultChannelSat ||
		daveSide.LocalBalance != regtest.DefaultPushSat {

		t.Fatalf("dave's channel with carol: %+v", daveSide)
	}
	bal, err := net.Alice.Client.ChannelBalance(ctx)
	must(t, err)
	if bal.LocalMsat == 0 || bal.UnsettledLocalMsat != 0 {
		t.Fatalf("alice's balance: %+v", bal)
	}

	// Block epochs: the current height first, then each new block.
	blocks, err := net.Alice.Client.SubscribeBlocks(ctx)
	must(t, err)
	defer blocks.Close()
	if h := next(t, blocks); h != tip {
		t.Fatalf("first height %d, want %d", h, tip)
	}
	must(t, net.Mine(ctx, 1))
	if h := next(t, blocks); h != tip+1 {
		t.Fatalf("next height %d, want %d", h, tip+1)
	}

	// dave's private invoice carries a route hint through carol.
	inv, err := net.Dave.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: 20_000_000, Memo: "coffee", Expiry: time.Hour,
		Private: true,
	})
	must(t, err)
	req, err := net.Alice.Client.DecodePayReq(ctx, inv.PaymentRequest)
	must(t, err)
	if req.Destination != net.Dave.PubKey || req.Hash != inv.Hash ||
		req.AmountMsat != 20_000_000 || req.RouteHints == 0 ||
		req.Description != "coffee" || req.Expiry != time.Hour {

		t.Fatalf("decoded: %+v", req)
	}

	// An amountless invoice is paid with the amount the payer names.
	open, err := net.Dave.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		Memo: "any amount", Expiry: time.Hour, Private: true,
	})
	must(t, err)
	tip2, err := net.Carol.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: open.PaymentRequest, AmountMsat: 5_000_000,
	})
	must(t, err)
	defer tip2.Close()
	if p := final(t, tip2); p.Status != lnd.PaymentSucceeded ||
		p.ValueMsat != 5_000_000 || p.FeeMsat != 0 {

		t.Fatalf("carol -> dave, amountless: %v (%v), %v + fee %v",
			p.Status, p.FailureReason, p.ValueMsat, p.FeeMsat)
	}

	// dave can pay too, out of what carol pushed to him. (Only carol:
	// the other channels' funds are all on the sender's side.)
	carolInv, err := net.Carol.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: 10_000_000, Memo: "from dave",
	})
	must(t, err)
	pay, err := net.Dave.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: carolInv.PaymentRequest, FeeLimitMsat: 100_000,
	})
	must(t, err)
	defer pay.Close()
	if p := final(t, pay); p.Status != lnd.PaymentSucceeded {
		t.Fatalf("dave -> carol: %v (%v)", p.Status, p.FailureReason)
	}
	got, err := net.Carol.Client.LookupInvoice(ctx, carolInv.Hash)
	must(t, err)
	if got.State != lnd.InvoiceSettled || got.AmountPaidMsat != 10_000_000 ||
		got.Preimage == nil || got.Preimage.Hash() != carolInv.Hash {

		t.Fatalf("carol's invoice: %v, %v paid", got.State,
			got.AmountPaidMsat)
	}
}

// testErrors: lnd's errors come back as our sentinels.
func testErrors(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	pre := randomPreimage(t)
	unknown := pre.Hash()
	bob := net.Bob.Client

	_, err := bob.LookupInvoice(ctx, unknown)
	wantErr(t, err, lnd.ErrInvoiceNotFound)
	_, err = bob.SubscribeSingleInvoice(ctx, unknown)
	wantErr(t, err, lnd.ErrInvoiceNotFound)
	wantErr(t, bob.CancelInvoice(ctx, unknown), lnd.ErrInvoiceNotFound)
	_, err = bob.TrackPayment(ctx, unknown)
	wantErr(t, err, lnd.ErrPaymentNotFound)

	req := lnd.HoldInvoiceRequest{Hash: unknown, ValueMsat: 1000}
	_, err = bob.AddHoldInvoice(ctx, req)
	must(t, err)
	_, err = bob.AddHoldInvoice(ctx, req)
	wantErr(t, err, lnd.ErrInvoiceExists)
	must(t, bob.CancelInvoice(ctx, unknown))

	_, err = bob.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{})
	wantErr(t, err, lnd.ErrInvalidRequest)
	_, err = bob.SendPayment(ctx, lnd.SendPaymentRequest{Invoice: "lnbc1"})
	wantErr(t, err, lnd.ErrInvalidRequest)

	// The wrong network is refused at Connect.
	cfg := lnd.Config{
		Host:         net.Alice.RPCAddr(),
		TLSCertPath:  net.Alice.TLSCertPath,
		MacaroonPath: net.Alice.MacaroonPath,
		Network:      "regtest",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	wrong := cfg
	wrong.Network = "mainnet"
	_, err = lnd.Connect(ctx, wrong)
	wantErr(t, err, lnd.ErrIncompatible)

	// Ending a subscription's context ends it with that error; Close
	// ends every subscription with ErrClosed.
	c, err := lnd.Connect(ctx, cfg)
	must(t, err)
	subCtx, cancel := context.WithCancel(ctx)
	blocks, err := c.SubscribeBlocks(subCtx)
	must(t, err)
	next(t, blocks)
	cancel()
	<-blocks.Done()
	wantErr(t, blocks.Err(), context.Canceled)

	blocks, err = c.SubscribeBlocks(ctx)
	must(t, err)
	must(t, c.Close())
	<-blocks.Done()
	wantErr(t, blocks.Err(), lnd.ErrClosed)
	_, err = c.NodeInfo(ctx)
	wantErr(t, err, lnd.ErrClosed)
}

// testRestartWhileAccepted: bob's lnd restarts while it holds alice's HTLC,
// then alice's; the invoice, block and payment subscriptions opened before
// come back by themselves, the hold is still ACCEPTED and settles.
func testRestartWhileAccepted(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	const amt = lnwire.MilliSatoshi(70_000_000)

	daveInv, err := net.Dave.Client.AddInvoice(ctx, lnd.InvoiceRequest{
		ValueMsat: amt, Expiry: time.Hour, Private: true,
	})
	must(t, err)
	hold, err := net.Bob.Client.AddHoldInvoice(ctx, lnd.HoldInvoiceRequest{
		Hash: daveInv.Hash, ValueMsat: amt + 500_000, Expiry: time.Hour,
		CltvExpiry: holdCltv,
	})
	must(t, err)
	cancelAtEnd(t, net, daveInv.Hash)

	invSub, err := net.Bob.Client.SubscribeSingleInvoice(ctx, daveInv.Hash)
	must(t, err)
	defer invSub.Close()
	blocks, err := net.Bob.Client.SubscribeBlocks(ctx)
	must(t, err)
	defer blocks.Close()
	height := next(t, blocks)

	pay, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: hold.PaymentRequest, FeeLimitMsat: 10_000,
	})
	must(t, err)
	defer pay.Close()
	waitInvoice(t, invSub, lnd.InvoiceAccepted)

	restart(t, net.Bob)

	inv, err := net.Bob.Client.LookupInvoice(ctx, daveInv.Hash)
	must(t, err)
	if inv.State != lnd.InvoiceAccepted {
		t.Fatalf("after bob's restart: %v, want ACCEPTED", inv.State)
	}

	// The block subscription is back: the next block arrives.
	must(t, net.Mine(ctx, 1))
	for h := next(t, blocks); h != height+1; h = next(t, blocks) {
		if h != height {
			t.Fatalf("height %d, want %d then %d", h, height,
				height+1)
		}
	}

	restart(t, net.Alice)

	out, err := net.Bob.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: daveInv.PaymentRequest, FeeLimitMsat: 100_000,
		CLTVLimit: inv.MinAcceptedExpiry() - height - 1 - safetyMargin,
	})
	must(t, err)
	defer out.Close()
	paid := final(t, out)
	if paid.Status != lnd.PaymentSucceeded {
		t.Fatalf("bob -> dave: %v (%v)", paid.Status, paid.FailureReason)
	}
	must(t, net.Bob.Client.SettleInvoice(ctx, paid.Preimage))

	// The subscription opened before the restart sees the settlement,
	// and nothing but ACCEPTED in between.
	if inv := next(t, invSub); inv.State != lnd.InvoiceSettled {
		t.Fatalf("invoice update after the restart: %v, want SETTLED",
			inv.State)
	}
	assertEnded(t, invSub)

	// alice's payment subscription, opened before her restart.
	got := final(t, pay)
	if got.Status != lnd.PaymentSucceeded || got.Preimage != paid.Preimage {
		t.Fatalf("alice: %v (%v)", got.Status, got.FailureReason)
	}
	must(t, net.WaitNoPendingHTLCs(ctx))
}

// restart stops and starts a node, checking that its client fails while
// it is down and works again after.
func restart(t *testing.T, node *regtest.Node) {
	t.Helper()
	ctx := testContext(t)
	began := time.Now()
	must(t, node.Stop(ctx))

	down, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := node.Client.NodeInfo(down)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) &&
		!errors.Is(err, lnd.ErrUnavailable) {

		t.Fatalf("%s down: NodeInfo error %v", node.Name, err)
	}

	must(t, node.Start(ctx))
	if _, err := node.Client.NodeInfo(ctx); err != nil {
		t.Fatalf("%s after restart: %v", node.Name, err)
	}
	t.Logf("%s restarted in %v", node.Name,
		time.Since(began).Round(time.Millisecond))
}
