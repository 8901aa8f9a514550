package scenarios

import (
	"context"
	"encoding/hex"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lndStall is how long bob's lnd is frozen (SIGSTOP) while his daemon
// starts: long enough that, before issue 20, a release consumed meanwhile
// found no runner and was acknowledged and lost.
const lndStall = 500 * time.Millisecond

// carolAckWait is carol's nats.ackwait in these scenarios: a held message
// handed to carol before she died comes back only after it, so a restart
// well inside it lets the sender LSP's later outcome arrive first.
const carolAckWait = 30 * time.Second

// TestMessagesAcrossRestarts is issue 20: messages that cross a restart,
// in the order a crash makes, on real daemons and lnd. Each scenario failed
// on the code before the fix: the payment hung until its deadline.
func TestMessagesAcrossRestarts(t *testing.T) {
	net := regtest.StartT(t, regtest.Options{})
	c := newCastOn(t, net, Options{Carol: []string{
		"nats.ackwait=" + carolAckWait.String(),
	}})
	t.Run("ReleaseAtSenderStart", func(t *testing.T) {
		testReleaseAtSenderStart(t, c)
	})
	t.Run("CanceledWhileReceiverDown", func(t *testing.T) {
		testCanceledWhileReceiverDown(t, c)
	})
	ctx := testCtx(t, time.Minute)
	must(t, c.Close(ctx))

	// The same first sequence with an external NATS server, where the
	// release waits in bob's stream while his daemon is down.
	srv := testkit.StartNATS(t)
	x := newCastOn(t, net, Options{NATSURL: srv.ClientURL(), Tag: "ext"})
	t.Run("ReleaseWaitsInStream", func(t *testing.T) {
		testReleaseWaitsInStream(t, x, srv)
	})
}

// testReleaseAtSenderStart: bob's asynclspd is SIGKILLed while it holds a
// payment; the moment its embedded NATS listens again, its lnd freezes for
// lndStall and dave's genuine release is published to it. The release must
// wait until bob has resumed the hold, then settle it.
func testReleaseAtSenderStart(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 4*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdOne(t, c, 20_000_000, 0)
	rel := signedRelease(t, c, h)

	must(t, c.Bob.Kill())
	restarted := make(chan error, 1)
	go func() { restarted <- c.Bob.Restart(ctx) }()
	waitListening(t, ctx, c.Bob.NATSURL)
	stall := freeze(t, c.Net.Bob.PID())
	publishAsCarol(t, ctx, c, c.Bob.NATSURL, rel)
	stall()
	must(t, <-restarted)

	settled(t, ctx, c, h)
	checkSettledOnce(t, c, before, h)
}

// testReleaseWaitsInStream: with an external NATS server, dave releases
// while bob's asynclspd is dead; carol relays it into bob's stream, where it
// waits. Bob starts with his lnd frozen for lndStall from the moment his
// daemon connects to NATS; the waiting release must settle the hold.
func testReleaseWaitsInStream(t *testing.T, c *Cast, srv *bus.Server) {
	timed(t)
	ctx := testCtx(t, 4*time.Minute)
	before, err := c.Balances(ctx)
	must(t, err)
	h := holdOne(t, c, 20_000_000, 0)
	relHex, err := c.SignRelease(ctx, h.item)
	must(t, err)

	must(t, c.Bob.Kill())
	_, err = c.Dave.PostRelease(ctx, relHex)
	must(t, err)
	stream := streamOf(t, ctx, c.Bob.NATSURL, c.Bob.NodeKey)
	must(t, poll(ctx, "the release in bob's stream", func(ctx context.Context) (bool, error) {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs > 0, err
	}))

	clients := srv.NumClients()
	restarted := make(chan error, 1)
	go func() { restarted <- c.Bob.Restart(ctx) }()
	for srv.NumClients() <= clients {
		if ctx.Err() != nil {
			t.Fatal("bob's daemon never connected to NATS")
		}
		time.Sleep(100 * time.Microsecond)
	}
	freeze(t, c.Net.Bob.PID())()
	must(t, <-restarted)

	settled(t, ctx, c, h)
	checkSettledOnce(t, c, before, h)
}

// testCanceledWhileReceiverDown: carol's asynclspd is frozen while bob's
// held_htlc_available is delivered to it, then killed before it could
// acknowledge it; alice's payment is canceled meanwhile. Carol restarts
// well inside her ack wait, so bob's canceled outcome reaches her before
// the held message comes back. Her mailbox must end canceled, never
// pending, and alice has her funds back.
func testCanceledWhileReceiverDown(t *testing.T, c *Cast) {
	timed(t)
	ctx := testCtx(t, 4*time.Minute)
	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	before, err := c.Balances(ctx)
	must(t, err)
	p, err := c.Create(ctx, 15_000_000, "")
	must(t, err)
	hold, err := onionmsg.ParseHoldID(p.ID)
	must(t, err)

	// Carol freezes with a fresh pull request waiting at the server
	// (consumeExpiry, 5 s), so the held message is handed to her process
	// while it cannot act.
	must(t, c.Carol.Kill())
	must(t, c.Carol.Restart(ctx))
	cons := consumerOf(t, ctx, c.Bob.NATSURL, c.Carol.NodeKey)
	must(t, poll(ctx, "carol pulling again", func(ctx context.Context) (bool, error) {
		info, err := cons.Info(ctx)
		return err == nil && info.NumWaiting > 0, err
	}))
	must(t, syscall.Kill(c.Carol.PID(), syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(c.Carol.PID(), syscall.SIGCONT) })
	pay, err := c.AlicePays(ctx, p, 0)
	must(t, err)
	t.Cleanup(pay.Close)
	_, err = c.WaitState(ctx, p.ID, senderclient.StateHeld)
	must(t, err)
	// The held message reached carol's connection, and nobody acked it.
	must(t, poll(ctx, "held_htlc_available delivered to the frozen carol",
		func(ctx context.Context) (bool, error) {
			info, err := cons.Info(ctx)
			return err == nil && info.NumAckPending > 0, err
		}))
	must(t, c.Carol.Kill())
	delivered := time.Now()

	_, err = c.Wallet.Cancel(ctx, p.ID)
	must(t, err)
	p, err = c.WaitPayment(ctx, p.ID, "canceled and resolved",
		func(p *senderclient.Payment) (bool, error) {
			return p.State == senderclient.StateCanceled && p.Resolved, nil
		})
	must(t, err)
	must(t, c.Carol.Restart(ctx))
	if since := time.Since(delivered); since > carolAckWait/2 {
		t.Fatalf("carol back %v after the delivery: too close to her ack "+
			"wait (%v) for the outcome to come first", since, carolAckWait)
	}

	// After the ack wait the held message comes back: its item must be
	// canceled, as bob's outcome said, not pending.
	var it *receiverclient.Item
	must(t, poll(ctx, "the held message back at carol", func(ctx context.Context) (bool, error) {
		it, err = c.Dave.Item(ctx, c.Bob.NodeKey, hold, 0, 0)
		if receiverclient.IsCode(err, receiverclient.CodeNotFound) {
			return false, nil
		}
		return err == nil, err
	}))
	if it.State != receiverclient.StateCanceled || it.Reason != p.Reason {
		t.Fatalf("dave's mailbox item is %s %q after the cancel, want canceled %q",
			it.State, it.Reason, p.Reason)
	}
	items, err := c.Dave.Mailbox(ctx)
	must(t, err)
	for _, pending := range items {
		if pending.HoldID == hold {
			t.Fatalf("the canceled payment is pending in dave's mailbox: %+v", pending)
		}
	}
	must(t, c.Net.WaitNoPendingHTLCs(ctx))
	after, err := c.Balances(ctx)
	must(t, err)
	if moved := after.Minus(before); !allZero(moved) {
		t.Fatalf("a canceled payment moved %v", moved)
	}
}

// signedRelease is dave's release of h, signed by his lnd, decoded.
func signedRelease(t *testing.T, c *Cast, h *held) *onionmsg.ReleaseHeldHTLC {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	relHex, err := c.SignRelease(ctx, h.item)
	must(t, err)
	raw, err := hex.DecodeString(relHex)
	must(t, err)
	rel, err := onionmsg.DecodeReleaseHeldHTLC(raw)
	must(t, err)
	return rel
}

// publishAs carol sends rel to bob over the NATS server at natsURL, as
// carol's daemon relays one: in an envelope signed by carol's lnd.
func publishAsCarol(t *testing.T, ctx context.Context, c *Cast, natsURL string,
	rel *onionmsg.ReleaseHeldHTLC) {

	t.Helper()
	conn, err := bus.Connect(ctx, bus.ClientConfig{URLs: []string{natsURL},
		NodeKey: bus.NodeKey(c.Carol.NodeKey), Logger: testkit.Quiet()})
	must(t, err)
	defer conn.Close()
	node, err := lspnet.New(lspnet.Config{Transport: conn,
		Signer: c.Net.Carol.Client, Logger: testkit.Quiet()})
	must(t, err)
	// JetStream may take a moment after the listener to take writes.
	must(t, poll(ctx, "the release published to bob", func(ctx context.Context) (bool, error) {
		return node.Send(ctx, c.Bob.NodeKey, rel) == nil, nil
	}))
}

// waitListening returns the moment something accepts connections at
// natsURL's address.
func waitListening(t *testing.T, ctx context.Context, natsURL string) {
	t.Helper()
	u, err := url.Parse(natsURL)
	must(t, err)
	for {
		conn, err := net.DialTimeout("tcp", u.Host, 50*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("nothing listens at %s: %v", natsURL, err)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// freeze stops the process pid with SIGSTOP now, and returns a function
// that continues it (SIGCONT) once lndStall has passed since, the injected
// fault's length. The process is continued when the test ends in any case.
func freeze(t *testing.T, pid int) func() {
	t.Helper()
	must(t, syscall.Kill(pid, syscall.SIGSTOP))
	stopped := time.Now()
	cont := func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	t.Cleanup(cont)
	return func() {
		time.Sleep(time.Until(stopped.Add(lndStall)))
		cont()
	}
}

// settled waits until bob's API says h's payment is SETTLED and dave's
// mailbox item ended settled too (carol heard bob's outcome).
func settled(t *testing.T, ctx context.Context, c *Cast, h *held) {
	t.Helper()
	_, err := c.WaitState(ctx, h.p.ID, senderclient.StateSettled)
	must(t, err)
	it := h.item
	must(t, poll(ctx, "dave's mailbox item final", func(ctx context.Context) (bool, error) {
		// A long-poll that answers once the item is final.
		it, err = c.Dave.Item(ctx, it.SenderLSP, it.HoldID, 0, 10*time.Second)
		return err == nil && (it.State == receiverclient.StateSettled ||
			it.State == receiverclient.StateCanceled), err
	}))
	if it.State != receiverclient.StateSettled {
		t.Fatalf("dave's mailbox item ended %s %q", it.State, it.Reason)
	}
}

// streamOf and consumerOf read an LSP's inbound stream and consumer on the
// NATS server at natsURL, as an operator's tool would.
func streamOf(t *testing.T, ctx context.Context, natsURL string,
	lsp onionmsg.NodeKey) jetstream.Stream {

	t.Helper()
	js := jetStream(t, natsURL)
	s, err := js.Stream(ctx, bus.StreamName(bus.NodeKey(lsp)))
	must(t, err)
	return s
}

func consumerOf(t *testing.T, ctx context.Context, natsURL string,
	lsp onionmsg.NodeKey) jetstream.Consumer {

	t.Helper()
	js := jetStream(t, natsURL)
	cons, err := js.Consumer(ctx, bus.StreamName(bus.NodeKey(lsp)), bus.ConsumerName)
	must(t, err)
	return cons
}

func jetStream(t *testing.T, natsURL string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Name("scenarios: observer"))
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	return js
}

// allZero reports whether no balance moved.
func allZero(b Balances) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
