package receiverlsp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// peer is an LSP on the in-process NATS server.
type peer struct {
	key    onionmsg.NodeKey
	signer *onionmsg.PrivKeySigner
	conn   *testkit.Conn
	node   *lspnet.Node
}

func connect(t testing.TB, srv *bus.Server, index int) *peer {
	t.Helper()
	priv, key := testkit.Key(index)
	conn := testkit.ConnectLSP(t, srv, key)
	signer := onionmsg.NewPrivKeySigner(priv)
	node, err := lspnet.New(lspnet.Config{Transport: conn, Signer: signer,
		Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return &peer{key: key, signer: signer, conn: conn, node: node}
}

// serve runs mux on p until the test ends.
func (p *peer) serve(t testing.TB, mux *lspnet.Mux) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.node.Run(ctx, mux) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run %s: %v", p.key, err)
		}
	})
}

// inbox records what a sender LSP receives.
type inbox struct {
	mu  sync.Mutex
	got []onionmsg.Message
}

func (b *inbox) handle(ctx context.Context, in *lspnet.Inbound) error {
	if err := in.Authentic(); err != nil {
		return err
	}
	b.mu.Lock()
	b.got = append(b.got, in.Msg)
	b.mu.Unlock()
	return nil
}

func (b *inbox) all() []onionmsg.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]onionmsg.Message(nil), b.got...)
}

// natsEnv is a receiver LSP whose role serves the bus, and sender LSPs
// that receive releases and outcomes in their inboxes.
type natsEnv struct {
	*env
	lspPeer *peer
	senders []*peer
	inboxes []*inbox
}

func newNATSEnv(t testing.TB, senders int, tweak ...func(*Config)) *natsEnv {
	t.Helper()
	srv := testkit.StartNATS(t)
	lsp := connect(t, srv, lspIndex)
	e := newEnv(t, append(tweak, func(c *Config) { c.Messenger = lsp.node })...)
	mux := lspnet.NewMux()
	e.role.Register(mux)
	lsp.serve(t, mux)
	ne := &natsEnv{env: e, lspPeer: lsp}
	for i := range senders {
		p := connect(t, srv, senderIndex+i)
		box := &inbox{}
		m := lspnet.NewMux()
		m.HandleMessage(onionmsg.TypeReleaseHeldHTLC, box.handle)
		m.HandleMessage(onionmsg.TypeHoldOutcome, box.handle)
		p.serve(t, m)
		ne.senders = append(ne.senders, p)
		ne.inboxes = append(ne.inboxes, box)
	}
	return ne
}

// ask sends invoice_request from sender s, retrying while the receiver
// LSP's responders are starting.
func (ne *natsEnv) ask(s int, req *onionmsg.InvoiceRequest) (*onionmsg.InvoiceReply, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The bus's 5 s default is a production bound; under -race on a
		// loaded machine, the receiver's one write per request can queue
		// past it, and this test is about what is answered, not when.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		reply, err := ne.senders[s].node.Request(ctx, ne.lsp, req)
		cancel()
		if errors.Is(err, bus.ErrNoResponders) && time.Now().Before(deadline) {
			// Poll: the responders start with the test.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		return reply.(*onionmsg.InvoiceReply), nil
	}
}

// A whole held payment over the bus: invoice_request, held_htlc_available,
// the receiver's release relayed to the sender LSP, and its hold_outcome
// back to the waiting receiver.
func TestOverTheBus(t *testing.T) {
	ne := newNATSEnv(t, 1)
	e := ne.env
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	sender := ne.senders[0]

	req := request(rc, onionmsg.NewHoldID(), 42_000, e.clock.Now().Add(time.Hour))
	reply, err := ne.ask(0, req)
	if err != nil || reply.Invoice == "" {
		t.Fatalf("invoice_request: %+v, %v", reply, err)
	}
	// A retry over the bus gets the same invoice.
	again, err := ne.ask(0, req)
	if err != nil || again.Invoice != reply.Invoice {
		t.Fatalf("retry: %+v, %v", again, err)
	}
	held := &onionmsg.HeldHTLCAvailable{
		HoldID: req.HoldID, PaymentHash: hashOf(t, reply.Invoice), Amount: req.Amount,
		DeadlineHeight: 1100, DeadlineTime: e.clock.Now().Add(6 * time.Hour),
		SenderLSPKey: sender.key, ReceiverKey: rc.key,
		ReleaseSecret: onionmsg.NewReleaseSecret(),
	}
	if err := sender.node.Send(e.ctx, e.lsp, held); err != nil {
		t.Fatal(err)
	}
	var items []client.Item
	testkit.Eventually(t, 10*time.Second, "the hold in the mailbox", func() bool {
		items, err = rc.client.Mailbox(e.ctx)
		return err == nil && len(items) == 1
	})
	released, err := rc.client.Release(e.ctx, &items[0], 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the release at the sender LSP", func() bool {
		return len(ne.inboxes[0].all()) == 1
	})
	rel, ok := ne.inboxes[0].all()[0].(*onionmsg.ReleaseHeldHTLC)
	if !ok {
		t.Fatalf("sender LSP got %T", ne.inboxes[0].all()[0])
	}
	if err := onionmsg.VerifyRelease(rel, expectOf(held), e.clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	// The receiver waits for the outcome while the sender LSP pays.
	final := make(chan *client.Item, 1)
	go func() {
		it, err := rc.client.WaitOutcome(e.ctx, released)
		if err != nil {
			t.Error(err)
		}
		final <- it
	}()
	for _, st := range []onionmsg.HoldStatus{onionmsg.StatusReleased, onionmsg.StatusSettled} {
		err := sender.node.Send(e.ctx, e.lsp, &onionmsg.HoldOutcome{
			HoldID: held.HoldID, PaymentHash: held.PaymentHash, Status: st})
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case it := <-final:
		if it.State != client.StateSettled {
			t.Fatalf("final %+v", it)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no final state")
	}
}

// Over the bus, a full mailbox tells the sender LSP at once; a forged
// held_htlc_available is dropped and changes nothing.
func TestMailboxFullOverTheBus(t *testing.T) {
	ne := newNATSEnv(t, 1, func(c *Config) {
		c.Options.MaxPendingPerReceiver, c.Options.MaxPendingPerSender = 1, 1
	})
	e := ne.env
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	sender := ne.senders[0]
	send := func() *onionmsg.HeldHTLCAvailable {
		req := request(rc, onionmsg.NewHoldID(), 42_000, e.clock.Now().Add(time.Hour))
		reply, err := ne.ask(0, req)
		if err != nil {
			t.Fatal(err)
		}
		held := &onionmsg.HeldHTLCAvailable{
			HoldID: req.HoldID, PaymentHash: hashOf(t, reply.Invoice), Amount: req.Amount,
			DeadlineHeight: 1100, DeadlineTime: e.clock.Now().Add(6 * time.Hour),
			SenderLSPKey: sender.key, ReceiverKey: rc.key,
			ReleaseSecret: onionmsg.NewReleaseSecret(),
		}
		if err := sender.node.Send(e.ctx, e.lsp, held); err != nil {
			t.Fatal(err)
		}
		return held
	}
	send()
	second := send()
	testkit.Eventually(t, 10*time.Second, "mailbox_full at the sender LSP", func() bool {
		return len(ne.inboxes[0].all()) == 1
	})
	o, ok := ne.inboxes[0].all()[0].(*onionmsg.HoldOutcome)
	if !ok || o.HoldID != second.HoldID || o.Status != onionmsg.StatusRejected ||
		o.Reason != ReasonMailboxFull {
		t.Fatalf("sender LSP got %+v", ne.inboxes[0].all()[0])
	}

	// Signed by a stranger, claiming to be the sender LSP.
	req := request(rc, onionmsg.NewHoldID(), 42_000, e.clock.Now().Add(time.Hour))
	reply, err := ne.ask(0, req)
	if err != nil {
		t.Fatal(err)
	}
	forged := &onionmsg.HeldHTLCAvailable{
		HoldID: req.HoldID, PaymentHash: hashOf(t, reply.Invoice), Amount: req.Amount,
		DeadlineHeight: 1100, DeadlineTime: e.clock.Now().Add(6 * time.Hour),
		SenderLSPKey: sender.key, ReceiverKey: rc.key, ReleaseSecret: [32]byte{1},
	}
	strangerPriv, _ := testkit.Key(99)
	env, err := onionmsg.NewEnvelope(e.ctx, onionmsg.NewPrivKeySigner(strangerPriv),
		sender.key, e.lsp, onionmsg.NewMsgID(), time.Now(), forged)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := env.Encode()
	e.unchanged("a forged held_htlc_available", func() {
		if err := sender.conn.Publish(e.ctx, bus.NodeKey(e.lsp), bus.KindHeldHTLCAvailable,
			bus.MsgID(env.ID), data); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 10*time.Second, "the drop", func() bool {
			return ne.lspPeer.conn.Dropped(bus.KindHeldHTLCAvailable, bus.ReasonBadSignature) == 1
		})
	})
}

// Many sender LSPs ask for one receiver's invoices at once over the bus,
// each retrying: no invoice twice, retries get theirs, counts add up.
func TestConcurrentRequestsOverTheBus(t *testing.T) {
	const senders, holdsEach, stocked = 6, 10, 40
	ne := newNATSEnv(t, senders)
	e := ne.env
	rc := e.registered(0, "")
	e.stock(rc, stocked, 0)
	var (
		mu    sync.Mutex
		owner = map[string]onionmsg.HoldID{}
		empty int
		wg    sync.WaitGroup
	)
	for s := range senders {
		for range holdsEach {
			wg.Go(func() {
				req := request(rc, onionmsg.NewHoldID(), 10_000, e.clock.Now().Add(time.Hour))
				first, err := ne.ask(s, req)
				if err != nil {
					t.Error(err)
					return
				}
				retry, err := ne.ask(s, req)
				if err != nil || retry.Invoice != first.Invoice || retry.ErrorCode != first.ErrorCode {
					t.Errorf("retry %+v (%v), first %+v", retry, err, first)
				}
				mu.Lock()
				defer mu.Unlock()
				if first.Invoice == "" {
					if first.ErrorCode != onionmsg.ReplyNoInvoicesLeft {
						t.Errorf("reply %+v", first)
					}
					empty++
					return
				}
				if prev, dup := owner[first.Invoice]; dup {
					t.Errorf("invoice handed to holds %s and %s", prev, req.HoldID)
				}
				owner[first.Invoice] = req.HoldID
			})
		}
	}
	wg.Wait()
	c, err := rc.client.Counts(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(owner) != stocked || empty != senders*holdsEach-stocked ||
		c.Reserved+c.Available != stocked || c.Reserved != len(owner) {
		t.Fatalf("handed out %d, empty-handed %d, counts %+v", len(owner), empty, c)
	}
}
