package senderlsp

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// BenchmarkCreatePayment: one CreatePayment (capacity check, invoice from
// the receiver LSP, hold recorded, hold invoice made and recorded, runner
// started) with 100 and with 10,000 payments already held. The target is a
// cost flat in the number held (issue 15: at 10,000 a create took 2 s).
//
// The receiver LSP answers in-process (no NATS: its cost does not depend on
// the holds). lnd is the fake, except that its ListChannels hands over every
// pending HTLC of the node, as lnd does and the adapter copies: the held
// HTLCs sit on the sender's channels, 480 to a channel.
func BenchmarkCreatePayment(b *testing.B) {
	for _, held := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			benchCreate(b, held)
		})
	}
}

func benchCreate(b *testing.B, held int) {
	ctx, cancel := context.WithCancel(context.Background())
	clk := clock.NewDefaultClock()
	_, bob := testkit.Key(1)
	_, carol := testkit.Key(2)
	_, dave := testkit.Key(3)
	_, alice := testkit.Key(4)
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "bob.db"), Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fake := &htlcLnd{FakeLnd: testkit.NewFakeLnd(clk, carol)}
	cfg := DefaultConfig()
	seedHeldMany(b, store, fake, cfg, held, carol, dave, alice)

	m, err := New(cfg, Deps{Store: store, Lnd: fake, Clock: clk, Logger: testkit.Quiet(),
		Net: &invoiceNet{self: bob, dave: dave, clock: clk}})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(ctx) }()
	// Every resumed hold is tracked again before the clock starts: what
	// is measured is a create beside held payments, not beside their
	// recovery.
	<-m.Tracked()

	req := PaymentRequest{ReceiverKey: dave, ReceiverLSP: carol, AmountMsat: 10_000,
		Owner: "bench"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.CreatePayment(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// seedHeldMany stores n holds already HELD at bob and at his fake lnd, 1,000
// to a commit, and gives the fake the sender's channels carrying their
// HTLCs next to its channel to carol.
func seedHeldMany(b *testing.B, store *holdstore.Store, fake *htlcLnd, cfg Config, n int,
	carol, dave, alice onionmsg.NodeKey) {

	ctx := context.Background()
	height, _ := fake.CurrentHeight(ctx)
	expiry := height + cfg.HoldCltvDelta
	now := time.Now()
	chans, _ := fake.FakeLnd.ListChannels(ctx)
	for start := 0; start < n; start += 1000 {
		holds := make([]*holdstore.Hold, min(1000, n-start))
		for i := range holds {
			inv, p := testkit.FakeInvoice(dave, 10_000, now, 24*time.Hour)
			h := &holdstore.Hold{
				ID: holdstore.NewID(), PaymentHash: p.Hash(), Owner: "bench",
				AmountMsat: 10_000, FeeMsat: cfg.Fee(10_000), HoldInvoice: "lnbcrtfake1hold",
				ReceiverKey: route.Vertex(dave), ReceiverLSP: route.Vertex(carol),
				ReceiverInvoice: inv, ReceiverInvoiceExpiry: now.Add(24 * time.Hour),
				ReceiverInvoiceAmountMsat: 10_000, CltvDelta: cfg.HoldCltvDelta,
				RetryPolicy: holdstore.RetryPatient, DeadlineTime: now.Add(12 * time.Hour),
			}
			rand.Read(h.ReleaseSecret[:])
			if _, err := fake.AddHoldInvoice(ctx, holdInvoiceRequest(h, cfg)); err != nil {
				b.Fatal(err)
			}
			if err := fake.PayHoldInvoice(h.PaymentHash, expiry); err != nil {
				b.Fatal(err)
			}
			holds[i] = h
		}
		err := store.Update(ctx, func(tx *holdstore.Tx) error {
			for _, h := range holds {
				if _, err := tx.Create(h); err != nil {
					return err
				}
				if _, err := tx.Apply(holdstore.Transition{ID: h.ID,
					From: holdstore.StateCreated, To: holdstore.StateHeld,
					IncomingExpiry: expiry,
					DeadlineHeight: cfg.DeadlineHeight(expiry)}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		ch := lnd.Channel{ChanID: uint64(100 + start/1000), RemotePubKey: route.Vertex(alice),
			Active: true, Capacity: 1_000_000, RemoteBalance: 1_000_000,
			MaxIncomingHTLCs: 483, MaxOutgoingHTLCs: 483}
		for i, h := range holds {
			if i > 0 && i%480 == 0 {
				chans = append(chans, ch)
				ch.ChanID += 10_000
				ch.HTLCs, ch.IncomingHTLCs = nil, 0
			}
			ch.IncomingHTLCs++
			ch.HTLCs = append(ch.HTLCs, lnd.ChannelHTLC{Incoming: true,
				Hash: h.PaymentHash, AmountMsat: h.HoldAmountMsat(), ExpiryHeight: expiry})
		}
		chans = append(chans, ch)
	}
	fake.SetChannels(chans)
}

// htlcLnd is the fake lnd whose ListChannels copies every HTLC of every
// channel, as the adapter converts lnd's answer (internal/lnd/channels.go).
type htlcLnd struct{ *testkit.FakeLnd }

func (l *htlcLnd) ListChannels(ctx context.Context) ([]lnd.Channel, error) {
	chans, err := l.FakeLnd.ListChannels(ctx)
	for i := range chans {
		htlcs := make([]lnd.ChannelHTLC, len(chans[i].HTLCs))
		for j, h := range chans[i].HTLCs {
			var hash lntypes.Hash
			copy(hash[:], h.Hash[:])
			htlcs[j] = lnd.ChannelHTLC{Incoming: h.Incoming, Hash: hash,
				AmountMsat: lnwire.MilliSatoshi(h.AmountMsat), ExpiryHeight: h.ExpiryHeight}
		}
		chans[i].HTLCs = htlcs
	}
	return chans, err
}

// invoiceNet is a receiver LSP answering invoice requests in-process with a
// fresh invoice of dave, and taking every other message.
type invoiceNet struct {
	self, dave onionmsg.NodeKey
	clock      clock.Clock
}

func (n *invoiceNet) Self() onionmsg.NodeKey { return n.self }

func (n *invoiceNet) Send(context.Context, onionmsg.NodeKey, onionmsg.Message) error {
	return nil
}

func (n *invoiceNet) Request(_ context.Context, _ onionmsg.NodeKey,
	m onionmsg.Message) (onionmsg.Message, error) {

	req, ok := m.(*onionmsg.InvoiceRequest)
	if !ok {
		return nil, fmt.Errorf("invoiceNet: %T", m)
	}
	inv, _ := testkit.FakeInvoice(n.dave, req.Amount, n.clock.Now(), 24*time.Hour)
	return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}, nil
}
