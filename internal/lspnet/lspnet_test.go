package lspnet_test

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
	"github.com/lightningnetwork/lnd/lnwire"
)

type lsp struct {
	key    onionmsg.NodeKey
	signer *onionmsg.PrivKeySigner
	conn   *testkit.Conn
	node   *lspnet.Node
}

func newLSP(t *testing.T, srv *bus.Server, i int) *lsp {
	t.Helper()
	priv, key := testkit.Key(i)
	conn := testkit.ConnectLSP(t, srv, key)
	signer := onionmsg.NewPrivKeySigner(priv)
	node, err := lspnet.New(lspnet.Config{Transport: conn, Signer: signer,
		Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return &lsp{key: key, signer: signer, conn: conn, node: node}
}

// run serves mux on l until the test ends.
func run(t *testing.T, l *lsp, mux *lspnet.Mux) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.node.Run(ctx, mux) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}

func held(to onionmsg.NodeKey, from onionmsg.NodeKey) *onionmsg.HeldHTLCAvailable {
	return &onionmsg.HeldHTLCAvailable{
		HoldID: onionmsg.HoldID{1}, PaymentHash: [32]byte{2},
		Amount: 1000, DeadlineHeight: 500,
		DeadlineTime: time.Unix(2_000_000_000, 0), SenderLSPKey: from,
		ReceiverKey: to, ReleaseSecret: [32]byte{3},
	}
}

// recorder collects the messages a handler accepted.
type recorder struct {
	mu  sync.Mutex
	got []*lspnet.Inbound
}

func (r *recorder) handle(ctx context.Context, in *lspnet.Inbound) error {
	if err := in.Authentic(); err != nil {
		return err
	}
	r.mu.Lock()
	r.got = append(r.got, in)
	r.mu.Unlock()
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func TestSendDeliversSignedMessage(t *testing.T) {
	srv := testkit.StartNATS(t)
	a, b := newLSP(t, srv, 1), newLSP(t, srv, 2)
	var rec recorder
	mux := lspnet.NewMux()
	mux.HandleMessage(onionmsg.TypeHeldHTLCAvailable, rec.handle)
	run(t, b, mux)

	if err := a.node.Send(context.Background(), b.key, held(b.key, a.key)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "delivery", func() bool { return rec.count() == 1 })
	in := rec.got[0]
	m, ok := in.Msg.(*onionmsg.HeldHTLCAvailable)
	if !ok || in.From != a.key || m.Amount != lnwire.MilliSatoshi(1000) || in.Delivered != 1 {
		t.Fatalf("got %+v from %s", in.Msg, in.From)
	}
}

// An envelope signed by a key other than the one in its subject is dropped
// before or at its handler, and never redelivered; a handler that forgets to
// ask Authentic does not get to accept it either.
func TestForgedEnvelopesAreDropped(t *testing.T) {
	srv := testkit.StartNATS(t)
	a, b := newLSP(t, srv, 1), newLSP(t, srv, 2)
	_, mallory := testkit.Key(3)
	var careless, careful recorder
	mux := lspnet.NewMux()
	mux.HandleMessage(onionmsg.TypeHeldHTLCAvailable, careful.handle)
	mux.HandleMessage(onionmsg.TypeHoldOutcome, func(ctx context.Context, in *lspnet.Inbound) error {
		careless.mu.Lock()
		careless.got = append(careless.got, in)
		careless.mu.Unlock()
		return nil // never asks Authentic
	})
	run(t, b, mux)
	ctx := context.Background()

	// A signs, but claims to be mallory inside the envelope: the
	// subject says A.
	env, err := onionmsg.NewEnvelope(ctx, a.signer, mallory, b.key,
		onionmsg.MsgID{9}, time.Now(), held(b.key, mallory))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := env.Encode()
	if err := a.conn.Publish(ctx, bus.NodeKey(b.key), bus.KindHeldHTLCAvailable, bus.MsgID{9}, data); err != nil {
		t.Fatal(err)
	}
	// Signed by mallory's key but claiming A, who published it.
	malPriv, _ := testkit.Key(3)
	forged, _ := onionmsg.NewEnvelope(ctx, onionmsg.NewPrivKeySigner(malPriv), a.key, b.key,
		onionmsg.MsgID{10}, time.Now(), &onionmsg.HoldOutcome{
			HoldID: onionmsg.HoldID{1}, PaymentHash: [32]byte{2},
			Status: onionmsg.StatusSettled,
		})
	if forged != nil {
		data, _ = forged.Encode()
	}
	// NewEnvelope signs with the signer given: the signature is mallory's
	// over an envelope that names A as its sender.
	if err := a.conn.Publish(ctx, bus.NodeKey(b.key), bus.KindHoldOutcome, bus.MsgID{10}, data); err != nil {
		t.Fatal(err)
	}
	// A genuine message afterwards proves the consumer went past both.
	if err := a.node.Send(ctx, b.key, held(b.key, a.key)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the genuine message", func() bool { return careful.count() == 1 })
	if careful.got[0].ID == (onionmsg.MsgID{9}) {
		t.Fatal("an envelope naming another sender was accepted")
	}
	// Both forgeries are dropped for their signature, including the one
	// whose careless handler never asked Authentic and returned nil.
	testkit.Eventually(t, 10*time.Second, "two drops", func() bool {
		return b.conn.Dropped(bus.KindHeldHTLCAvailable, bus.ReasonBadSignature) == 1 &&
			b.conn.Dropped(bus.KindHoldOutcome, bus.ReasonBadSignature) == 1
	})
	if n := careless.count(); n > 1 {
		t.Fatalf("forged outcome handled %d times", n)
	}
}

func TestRequestReply(t *testing.T) {
	srv := testkit.StartNATS(t)
	a, b := newLSP(t, srv, 1), newLSP(t, srv, 2)
	mux := lspnet.NewMux()
	mux.HandleRequest(onionmsg.TypeInvoiceRequest, func(ctx context.Context, in *lspnet.Inbound) (onionmsg.Message, error) {
		if err := in.Authentic(); err != nil {
			return nil, err
		}
		req := in.Msg.(*onionmsg.InvoiceRequest)
		if req.Amount > 5000 {
			return nil, lspnet.Drop(bus.ReasonMalformed, errors.New("too much"))
		}
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: "lnbcrt1invoice"}, nil
	})
	run(t, b, mux)
	ctx := context.Background()
	ask := func(amt lnwire.MilliSatoshi) (onionmsg.Message, error) {
		return a.node.Request(ctx, b.key, &onionmsg.InvoiceRequest{
			HoldID: onionmsg.HoldID{7}, ReceiverKey: b.key, Amount: amt,
			MinExpiry: time.Unix(2_000_000_000, 0),
		})
	}
	var reply onionmsg.Message
	var err error
	testkit.Eventually(t, 10*time.Second, "the responder", func() bool {
		reply, err = ask(1000)
		return !errors.Is(err, bus.ErrNoResponders)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, ok := reply.(*onionmsg.InvoiceReply)
	if !ok || r.Invoice != "lnbcrt1invoice" || r.HoldID != (onionmsg.HoldID{7}) {
		t.Fatalf("reply %+v", reply)
	}
	if _, err := ask(9000); !errors.Is(err, bus.ErrRejected) {
		t.Fatalf("a dropped request: err = %v, want rejected", err)
	}
}

// Two handlers of one type (both roles of a daemon hear hold_outcome): the
// first that does not answer ErrNotMine takes the message; one no handler
// claims is dropped as misdirected.
func TestHandlersPassOnWhatIsNotTheirs(t *testing.T) {
	srv := testkit.StartNATS(t)
	a, b := newLSP(t, srv, 1), newLSP(t, srv, 2)
	var first, second recorder
	claims := func(r *recorder, status onionmsg.HoldStatus) lspnet.MessageFunc {
		return func(ctx context.Context, in *lspnet.Inbound) error {
			if in.Msg.(*onionmsg.HoldOutcome).Status != status {
				return lspnet.ErrNotMine
			}
			return r.handle(ctx, in)
		}
	}
	mux := lspnet.NewMux()
	mux.HandleMessage(onionmsg.TypeHoldOutcome, claims(&first, onionmsg.StatusSettled))
	mux.HandleMessage(onionmsg.TypeHoldOutcome, claims(&second, onionmsg.StatusRejected))
	run(t, b, mux)
	ctx := context.Background()
	for _, st := range []onionmsg.HoldStatus{onionmsg.StatusRejected,
		onionmsg.StatusCanceled, onionmsg.StatusSettled} {
		if err := a.node.Send(ctx, b.key, &onionmsg.HoldOutcome{
			HoldID: onionmsg.HoldID{1}, PaymentHash: [32]byte{2}, Status: st,
		}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "settled to the first, rejected to the second", func() bool {
		return first.count() == 1 && second.count() == 1
	})
	testkit.Eventually(t, 10*time.Second, "the unclaimed one dropped", func() bool {
		return b.conn.Dropped(bus.KindHoldOutcome, bus.ReasonMisdirected) == 1
	})
}

// A self-authenticating handler runs without waiting for the envelope
// check, and a message whose envelope fails it is still dropped and
// counted, never acknowledged as handled.
func TestSelfAuthenticatingStillDropsBadEnvelopes(t *testing.T) {
	srv := testkit.StartNATS(t)
	a, b := newLSP(t, srv, 1), newLSP(t, srv, 2)
	var got recorder
	mux := lspnet.NewMux()
	mux.HandleSelfAuthenticating(onionmsg.TypeHoldOutcome, func(ctx context.Context, in *lspnet.Inbound) error {
		got.mu.Lock()
		got.got = append(got.got, in)
		got.mu.Unlock()
		return nil
	})
	run(t, b, mux)
	ctx := context.Background()
	outcome := &onionmsg.HoldOutcome{HoldID: onionmsg.HoldID{1},
		PaymentHash: [32]byte{2}, Status: onionmsg.StatusSettled}

	// Signed by mallory, published by A as A.
	malPriv, _ := testkit.Key(3)
	forged, err := onionmsg.NewEnvelope(ctx, onionmsg.NewPrivKeySigner(malPriv),
		a.key, b.key, onionmsg.MsgID{10}, time.Now(), outcome)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := forged.Encode()
	if err := a.conn.Publish(ctx, bus.NodeKey(b.key), bus.KindHoldOutcome, bus.MsgID{10}, data); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Send(ctx, b.key, outcome); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "both handled, the forged one dropped", func() bool {
		return got.count() == 2 &&
			b.conn.Dropped(bus.KindHoldOutcome, bus.ReasonBadSignature) == 1
	})
}
