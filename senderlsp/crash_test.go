package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// The crash tests run bob's sender role in a child process (this test
// binary, re-executed) against a fake lnd that persists its state to a file,
// as a real lnd outlives the daemon. The child kills itself with SIGKILL at
// a named point (an lnd call entered or done, a payment or invoice update
// about to be delivered); a second child takes over the same SQLite file and
// lnd, and the hold must end correctly: settled if the receiver was paid,
// canceled otherwise, never both, never stuck, and the receiver never paid
// twice.
const (
	envChild    = "SENDERLSP_CRASH_CHILD"
	envDir      = "SENDERLSP_CRASH_DIR"
	envNATS     = "SENDERLSP_CRASH_NATS"
	envKey      = "SENDERLSP_CRASH_KEY"
	envKill     = "SENDERLSP_CRASH_KILL"
	envScenario = "SENDERLSP_CRASH_SCENARIO"
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		if err := crashChild(); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(2)
		}
		return
	}
	os.Exit(m.Run())
}

// crashKeys: carol is the receiver LSP (the parent), dave the receiver;
// each case gives bob a key of its own so cases share nothing on the bus.
const carolKeyIndex, daveKeyIndex = 2, 3

// crashChild is bob's daemon: it creates one payment to dave if its store is
// empty, and runs until it is killed.
func crashChild() error {
	dir := os.Getenv(envDir)
	keyIndex, _ := strconv.Atoi(os.Getenv(envKey))
	bobPriv, bob := testkit.Key(keyIndex)
	_, carol := testkit.Key(carolKeyIndex)
	_, dave := testkit.Key(daveKeyIndex)
	clk := clock.NewDefaultClock()
	ctx := context.Background()

	lndFile := filepath.Join(dir, "lnd.json")
	fake, err := testkit.LoadFakeLnd(clk, lndFile)
	if errors.Is(err, os.ErrNotExist) {
		fake = testkit.NewFakeLnd(clk, carol)
		fake.AutoPay()
		if os.Getenv(envScenario) == "reject" {
			fake.Otherwise(testkit.Outcome{Fail: lnd.FailureIncorrectPaymentDetails})
		}
		err = fake.Persist(lndFile)
	}
	if err != nil {
		return err
	}
	if kill := os.Getenv(envKill); kill != "" {
		fake.SetHook(func(method, phase string) {
			if method+":"+phase == kill {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		})
	}

	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(dir, "bob.db"), Logger: testkit.Quiet()})
	if err != nil {
		return err
	}
	conn, err := bus.Connect(ctx, bus.ClientConfig{
		URLs: []string{os.Getenv(envNATS)}, NodeKey: bus.NodeKey(bob),
		Logger: testkit.Quiet()})
	if err != nil {
		return err
	}
	if err := conn.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		return err
	}
	node, err := lspnet.New(lspnet.Config{Transport: conn,
		Signer: onionmsg.NewPrivKeySigner(bobPriv), Logger: testkit.Quiet()})
	if err != nil {
		return err
	}
	cfg := DefaultConfig()
	cfg.QuickRetries = []time.Duration{100 * time.Millisecond}
	m, err := New(cfg, Deps{Store: store, Lnd: fake, Net: node, Clock: clk,
		Logger: testkit.Quiet()})
	if err != nil {
		return err
	}
	mux := lspnet.NewMux()
	m.Register(mux)
	go node.Run(ctx, mux)
	go m.Run(ctx)
	<-m.Running()

	page, err := store.List(ctx, holdstore.Filter{})
	if err != nil {
		return err
	}
	if len(page.Holds) == 0 {
		policy := holdstore.RetryPatient
		if os.Getenv(envScenario) == "reject" {
			policy = holdstore.RetryFastFail
		}
		if _, err := m.CreatePayment(ctx, PaymentRequest{ReceiverKey: dave,
			ReceiverLSP: carol, AmountMsat: 10_000_000, RetryPolicy: policy,
			Owner: "wallet"}); err != nil {
			return err
		}
	}
	select {} // until killed
}

// crashCarol is the receiver LSP in the parent: it hands out dave's
// invoices and relays dave's release as soon as it hears of a hold.
func crashCarol(t *testing.T, srv *bus.Server) {
	carolPriv, carol := testkit.Key(carolKeyIndex)
	davePriv, dave := testkit.Key(daveKeyIndex)
	node, err := lspnet.New(lspnet.Config{
		Transport: testkit.ConnectLSP(t, srv, carol),
		Signer:    onionmsg.NewPrivKeySigner(carolPriv), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	carolCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	mux := lspnet.NewMux()
	mux.HandleRequest(onionmsg.TypeInvoiceRequest, func(ctx context.Context, in *lspnet.Inbound) (onionmsg.Message, error) {
		req := in.Msg.(*onionmsg.InvoiceRequest)
		inv, _ := testkit.FakeInvoice(dave, req.Amount, time.Now(), 24*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}, in.Authentic()
	})
	mux.HandleMessage(onionmsg.TypeHeldHTLCAvailable, func(ctx context.Context, in *lspnet.Inbound) error {
		if err := in.Authentic(); err != nil {
			return err
		}
		held := in.Msg.(*onionmsg.HeldHTLCAvailable)
		rel := onionmsg.NewRelease(held, time.Now(), 10*time.Minute)
		if err := rel.Sign(ctx, onionmsg.NewPrivKeySigner(davePriv)); err != nil {
			return err
		}
		// Relayed from carol's own goroutine: the handler's context
		// ends when it returns.
		from := in.From
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := node.Send(carolCtx, from, rel); err != nil && carolCtx.Err() == nil {
				t.Errorf("relay release: %v", err)
			}
		}()
		return nil
	})
	mux.HandleMessage(onionmsg.TypeHoldOutcome, func(ctx context.Context, in *lspnet.Inbound) error {
		return in.Authentic()
	})
	wg.Add(1)
	go func() { defer wg.Done(); node.Run(carolCtx, mux) }()
}

type crashCase struct {
	scenario string // happy: dave takes the payment; reject: he refuses it
	kill     string // method:phase where the first child dies
	want     holdstore.State
	reason   holdstore.Reason
}

func TestCrashAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns daemon processes; run without -short")
	}
	cases := []crashCase{
		{"happy", "AddHoldInvoice:before", holdstore.StateCanceled, holdstore.ReasonInternal},
		{"happy", "AddHoldInvoice:after", holdstore.StateSettled, ""},
		{"happy", "InvoiceUpdate:ACCEPTED", holdstore.StateSettled, ""},
		{"happy", "SendPayment:before", holdstore.StateSettled, ""},
		{"happy", "SendPayment:after", holdstore.StateSettled, ""},
		{"happy", "PaymentUpdate:SUCCEEDED", holdstore.StateSettled, ""},
		{"happy", "SettleInvoice:before", holdstore.StateSettled, ""},
		{"happy", "SettleInvoice:after", holdstore.StateSettled, ""},
		{"reject", "SendPayment:after", holdstore.StateCanceled, holdstore.ReasonReceiverRejected},
		{"reject", "PaymentUpdate:FAILED", holdstore.StateCanceled, holdstore.ReasonReceiverRejected},
		{"reject", "CancelInvoice:before", holdstore.StateCanceled, holdstore.ReasonReceiverRejected},
		{"reject", "CancelInvoice:after", holdstore.StateCanceled, holdstore.ReasonReceiverRejected},
	}
	srv := testkit.StartNATS(t)
	crashCarol(t, srv)
	for i, c := range cases {
		t.Run(c.scenario+"/"+strings.ReplaceAll(c.kill, ":", "_"), func(t *testing.T) {
			dir := t.TempDir()
			key := 100 + i
			first := startChild(t, dir, srv, key, c)
			if err := waitKilled(first, 30*time.Second); err != nil {
				t.Fatalf("first daemon did not die at %s: %v", c.kill, err)
			}
			second := startChild(t, dir, srv, key, crashCase{scenario: c.scenario})
			hold := waitHoldResolved(t, dir, 30*time.Second)
			second.Process.Signal(syscall.SIGKILL)
			second.Wait()
			checkCrashOutcome(t, dir, hold, c)
		})
	}
}

func startChild(t *testing.T, dir string, srv *bus.Server, key int, c crashCase) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envDir+"="+dir,
		envNATS+"="+srv.ClientURL(), envKey+"="+strconv.Itoa(key),
		envKill+"="+c.kill, envScenario+"="+c.scenario)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// waitKilled waits for the child to die of SIGKILL.
func waitKilled(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return errors.New("timed out")
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("it exited with %v", cmd.ProcessState)
	}
	return nil
}

// waitHoldResolved polls the daemon's database (a second reader of the
// same file) until its one hold is resolved.
func waitHoldResolved(t *testing.T, dir string, timeout time.Duration) *holdstore.Hold {
	t.Helper()
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: filepath.Join(dir, "bob.db"), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var hold *holdstore.Hold
	testkit.Eventually(t, timeout, "the hold resolved", func() bool {
		page, err := store.List(context.Background(), holdstore.Filter{})
		if err != nil || len(page.Holds) != 1 {
			return false
		}
		hold = page.Holds[0]
		return hold.Resolved
	})
	evs, err := store.History(context.Background(), hold.ID)
	if err != nil {
		t.Fatal(err)
	}
	finals := 0
	for _, ev := range evs {
		if ev.Final {
			finals++
		}
	}
	if finals != 1 {
		t.Fatalf("%d final events", finals)
	}
	// The running total of pending holds came through the kill: the hold
	// is final, nothing is pending, and Open had nothing to repair.
	if p, err := store.PendingTotals(context.Background()); err != nil ||
		p != (holdstore.Pending{}) || store.TotalsRepaired() != 0 {
		t.Fatalf("pending %+v (%v), %d totals repaired at open", p, err,
			store.TotalsRepaired())
	}
	return hold
}

func checkCrashOutcome(t *testing.T, dir string, hold *holdstore.Hold, c crashCase) {
	t.Helper()
	if hold.State != c.want || (c.reason != "" && hold.Reason != c.reason) {
		t.Fatalf("hold ended %s/%s, want %s/%s", hold.State, hold.Reason, c.want, c.reason)
	}
	fake, err := testkit.LoadFakeLnd(clock.NewDefaultClock(), filepath.Join(dir, "lnd.json"))
	if err != nil {
		t.Fatal(err)
	}
	inv, haveInvoice := fake.Invoice(hold.PaymentHash)
	pay, paid := fake.Payment(hold.PaymentHash)
	received := paid && pay.Status == lnd.PaymentSucceeded
	switch hold.State {
	case holdstore.StateSettled:
		if !received || !haveInvoice || inv.State != lnd.InvoiceSettled {
			t.Fatalf("settled hold: receiver paid %v, hold invoice %v", received, inv.State)
		}
	case holdstore.StateCanceled:
		if received {
			t.Fatal("canceled hold, but the receiver was paid")
		}
		if haveInvoice && inv.State != lnd.InvoiceCanceled {
			t.Fatalf("canceled hold, hold invoice %v", inv.State)
		}
	}
	if n := len(fake.Sent()); n > 1 {
		t.Fatalf("%d outbound payments reached lnd", n)
	}
}
