package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/internal/lnd"
	rclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// shutdownTimeout is the daemons' shutdowntimeout in the regtest test.
const shutdownTimeout = 10 * time.Second

// daemonProc is an asynclspd process next to one lnd of the network.
type daemonProc struct {
	name    string
	node    *regtest.Node
	dir     string // its data dir
	conf    string // its config file
	ownConf bool   // passed with --configfile rather than found in dir
	api     string
	ops     string
	home    string
	p       *proc
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newDaemonProc(t *testing.T, name string, node *regtest.Node, ownConf bool) *daemonProc {
	d := &daemonProc{name: name, node: node, dir: t.TempDir(), ownConf: ownConf,
		api: freeAddr(t), ops: freeAddr(t), home: t.TempDir()}
	d.conf = filepath.Join(d.dir, "asynclspd.conf")
	if ownConf {
		d.conf = filepath.Join(t.TempDir(), name+".conf")
	}
	return d
}

// configure writes the daemon's config file: role, its lnd, its listeners,
// and the NATS section given.
func (d *daemonProc) configure(t *testing.T, role, nats string) {
	t.Helper()
	writeFile(t, d.conf, fmt.Sprintf(`# asynclspd of %s
[Application Options]
network=regtest
role=%s
loglevel=debug
shutdowntimeout=%s

[lnd]
lnd.host=%s
lnd.tlscertpath=%s
lnd.macaroonpath=%s

[api]
api.listen=%s

[ops]
ops.listen=%s

[nats]
%s
`, d.name, role, shutdownTimeout, d.node.RPCAddr(), d.node.TLSCertPath,
		d.node.MacaroonPath, d.api, d.ops, nats))
}

// start runs asynclspd and waits until /readyz answers 200.
func (d *daemonProc) start(t *testing.T) {
	t.Helper()
	args := []string{"--datadir=" + d.dir}
	if d.ownConf {
		args = append(args, "--configfile="+d.conf)
	}
	d.p = startProc(t, d.home, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's log (last 40 lines):\n%s", d.name, tail(d.p.stderr.String(), 40))
		}
	})
	eventually(t, 90*time.Second, d.name+" ready", func() error {
		select {
		case <-d.p.done:
			t.Fatalf("%s exited: %v\n%s", d.name, d.p.err, tail(d.p.stderr.String(), 40))
		default:
		}
		status, body := d.get("/readyz")
		if status != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", status, body)
		}
		return nil
	})
}

// stop sends SIGTERM and wants a clean exit within the shutdown timeout.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	code, took := d.p.stop(t, shutdownTimeout+5*time.Second)
	if code != 0 || took > shutdownTimeout {
		t.Fatalf("%s: exit %d after %v on SIGTERM (shutdown timeout %v)\n%s",
			d.name, code, took, shutdownTimeout, tail(d.p.stderr.String(), 40))
	}
	if !strings.Contains(d.p.stderr.String(), "asynclspd stopped") {
		t.Errorf("%s did not log its stop", d.name)
	}
	t.Logf("%s stopped cleanly in %v", d.name, took.Round(time.Millisecond))
}

// get fetches a path of the ops listener.
func (d *daemonProc) get(path string) (int, string) {
	resp, err := http.Get("http://" + d.ops + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// ctl is asyncctl's global flags for this daemon, as its operator.
func (d *daemonProc) ctl(args ...string) []string {
	return append([]string{"--rpcserver=" + d.api, "--datadir=" + d.dir}, args...)
}

func (d *daemonProc) adminToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// alicePays pays a hold invoice from alice's lnd; the channel gets the
// payment's final state.
func alicePays(t *testing.T, net *regtest.Network, invoice string) <-chan lnd.Payment {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sub, err := net.Alice.Client.SendPayment(ctx, lnd.SendPaymentRequest{
		Invoice: invoice, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("alice pays: %v", err)
	}
	final := make(chan lnd.Payment, 1)
	go func() {
		defer sub.Close()
		for p := range sub.Updates() {
			if p.Status.IsFinal() {
				final <- p
				return
			}
		}
	}()
	return final
}

func waitPaid(t *testing.T, final <-chan lnd.Payment) {
	t.Helper()
	select {
	case p := <-final:
		if p.Status != lnd.PaymentSucceeded {
			t.Fatalf("alice's payment %s: %v", p.Status, p.FailureReason)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("alice's payment did not end")
	}
}

// TestDaemonRegtest runs bob's and carol's asynclspd as processes next to
// the lnd nodes of a real regtest network, configured by files, and tries
// the flow by hand with asyncctl: dave registers and uploads invoices made
// on his lnd, a wallet pays through bob, alice pays the hold invoice, dave
// comes online and releases, and the payment settles. SIGTERM stops both
// cleanly with a payment held; they start again on the same data dirs, now
// on an external NATS server with the docs/nats permissions and an NKey
// each, resume the held payment and settle it, and take a new one. With
// carol's credentials, bob's inbound traffic cannot be read, nor can
// anything be published as bob.
func TestDaemonRegtest(t *testing.T) {
	asynclspdBinary(t) // build first: the network is not kept waiting
	net := regtest.StartT(t, regtest.Options{})

	natsAddr := freeAddr(t)
	bob := newDaemonProc(t, "bob", net.Bob, false)
	carol := newDaemonProc(t, "carol", net.Carol, true)
	bob.configure(t, RoleSender, "nats.embeddedlisten="+natsAddr)
	carol.configure(t, RoleReceiver, "nats.url=nats://"+natsAddr+"\nnats.createstream=true")
	bob.start(t)
	carol.start(t)

	// Health, readiness and metrics on the ops listener.
	if status, body := bob.get("/healthz"); status != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", status, body)
	}
	_, metrics := bob.get("/metrics")
	for _, m := range []string{"asynclsp_sender_", "asynclsp_bus_", "asynclsp_lnd_in_flight_max", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics has no %s", m)
		}
	}

	var info adminclient.Info
	asyncctlJSON(t, &info, bob.ctl("getinfo")...)
	if info.NodeKey != net.Bob.PubKey.String() || info.NATS != "embedded" || info.Network != "regtest" {
		t.Fatalf("bob's getinfo: %+v", info)
	}
	asyncctlJSON(t, &info, carol.ctl("getinfo")...)
	if info.NodeKey != net.Carol.PubKey.String() || info.NATS != "external" {
		t.Fatalf("carol's getinfo: %+v", info)
	}

	// dave, by hand, with his own lnd.
	daveLnd := []string{"--lnd.host=" + net.Dave.RPCAddr(), "--lnd.tlscertpath=" + net.Dave.TLSCertPath,
		"--lnd.macaroonpath=" + net.Dave.MacaroonPath, "--lnd.network=regtest"}
	dave := func(cmd string, args ...string) []string {
		return append(append([]string{"--rpcserver=" + carol.api, "receiver"}, daveLnd...),
			append([]string{cmd, "--lsp-key=" + net.Carol.PubKey.String()}, args...)...)
	}
	var reg rclient.RegisterResponse
	asyncctlJSON(t, &reg, dave("register")...)
	if reg.NodeKey.String() != net.Dave.PubKey.String() || reg.Token == "" {
		t.Fatalf("receiver register: %+v", reg)
	}
	daveToken := "--receiver-token=" + reg.Token
	var up rclient.UploadResponse
	asyncctlJSON(t, &up, dave("upload", daveToken, "--count=4")...)
	if up.Accepted != 4 || up.Counts.Available != 4 {
		t.Fatalf("receiver upload: %+v", up)
	}
	var receivers adminclient.ReceiverPage
	asyncctlJSON(t, &receivers, carol.ctl("receivers")...)
	if len(receivers.Receivers) != 1 || receivers.Receivers[0].Invoices.Available != 4 {
		t.Fatalf("carol's receivers: %+v", receivers)
	}

	// A wallet backend's token, and a payment through bob.
	var wallet adminclient.CreatedToken
	asyncctlJSON(t, &wallet, bob.ctl("tokens", "create", "--name=alice-wallet")...)
	pay := func(sat int) senderclient.Payment {
		t.Helper()
		var p senderclient.Payment
		asyncctlJSON(t, &p, "--rpcserver="+bob.api, "--token="+wallet.Bearer, "pay",
			"--receiver="+net.Dave.PubKey.String(), "--receiver-lsp="+net.Carol.PubKey.String(),
			fmt.Sprintf("--amt=%d", sat))
		if p.State != senderclient.StateCreated || !strings.HasPrefix(p.HoldInvoice, "lnbcrt") {
			t.Fatalf("pay: %+v", p)
		}
		return p
	}
	waitState := func(d *daemonProc, id string, st senderclient.State) {
		t.Helper()
		eventually(t, time.Minute, "payment "+string(st), func() error {
			var p senderclient.Payment
			asyncctlJSON(t, &p, d.ctl("payments", "show", id)...)
			if p.State != st {
				return fmt.Errorf("payment %s is %s", id, p.State)
			}
			return nil
		})
	}
	waitPending := func(id string) {
		t.Helper()
		eventually(t, time.Minute, "the payment in dave's mailbox", func() error {
			var mb adminclient.MailboxPage
			asyncctlJSON(t, &mb, carol.ctl("mailbox", "--state=pending")...)
			for _, it := range mb.Items {
				if it.HoldID == id {
					return nil
				}
			}
			return fmt.Errorf("mailbox: %+v", mb.Items)
		})
	}
	online := func(id string) {
		t.Helper()
		var out rclient.MailboxResponse
		asyncctlJSON(t, &out, dave("online", daveToken, "--wait=30s")...)
		if len(out.Items) != 1 || out.Items[0].HoldID.String() != id || out.Items[0].State != rclient.StateSettled {
			t.Fatalf("receiver online: %+v", out.Items)
		}
	}

	p1 := pay(20_000)
	paid1 := alicePays(t, net, p1.HoldInvoice)
	waitState(bob, p1.ID, senderclient.StateHeld)
	waitPending(p1.ID)
	online(p1.ID)
	waitPaid(t, paid1)
	waitState(bob, p1.ID, senderclient.StateSettled)
	asyncctlFails(t, "not_cancelable", bob.ctl("payments", "cancel", p1.ID)...)

	var st adminclient.Stats
	asyncctlJSON(t, &st, bob.ctl("stats")...)
	if st.Holds.ByState["SETTLED"] != 1 || st.Holds.PendingAmountMsat != 0 {
		t.Fatalf("bob's stats: %+v", st)
	}
	eventually(t, 30*time.Second, "carol's stats", func() error {
		asyncctlJSON(t, &st, carol.ctl("stats")...)
		if st.Mailbox["settled"] != 1 || st.Invoices.Reserved != 1 || st.Invoices.Available != 3 {
			return fmt.Errorf("carol's stats: %+v", st)
		}
		return nil
	})

	// A second payment is held when both daemons stop.
	p2 := pay(15_000)
	paid2 := alicePays(t, net, p2.HoldInvoice)
	waitState(bob, p2.ID, senderclient.StateHeld)
	waitPending(p2.ID)
	bobToken, carolToken := bob.adminToken(t), carol.adminToken(t)
	carol.stop(t)
	bob.stop(t)

	// Both start again on the same data dirs, now on a shared NATS server
	// with the docs/nats permissions, each LSP with its own NKey.
	perms := startPermissionedNATS(t, net.Bob.PubKey, net.Carol.PubKey)
	bob.configure(t, RoleSender, "nats.url="+perms.url+"\nnats.nkeyseedfile="+perms.seed[0])
	carol.configure(t, RoleReceiver, "nats.url="+perms.url+"\nnats.nkeyseedfile="+perms.seed[1])
	bob.start(t)
	carol.start(t)
	if bob.adminToken(t) != bobToken || carol.adminToken(t) != carolToken {
		t.Fatal("a restart replaced the admin token")
	}
	if !strings.Contains(bob.p.stderr.String(), "resumed_holds=1") {
		t.Errorf("bob did not resume the held payment:\n%s", tail(bob.p.stderr.String(), 30))
	}
	asyncctlJSON(t, &info, bob.ctl("getinfo")...)
	if info.NATS != "external" {
		t.Fatalf("bob's getinfo after the restart: %+v", info)
	}
	var page senderclient.Page
	asyncctlJSON(t, &page, bob.ctl("payments", "list")...)
	if len(page.Payments) != 2 || page.Payments[0].ID != p2.ID || page.Payments[0].State != senderclient.StateHeld ||
		page.Payments[1].State != senderclient.StateSettled {
		t.Fatalf("payments after the restart: %+v", page.Payments)
	}

	// The held payment settles across the restart, over the new server.
	online(p2.ID)
	waitPaid(t, paid2)
	waitState(bob, p2.ID, senderclient.StateSettled)

	// A new payment goes through the permissioned server end to end:
	// invoice_request, held_htlc_available, release, hold_outcome.
	p3 := pay(12_345)
	paid3 := alicePays(t, net, p3.HoldInvoice)
	waitState(bob, p3.ID, senderclient.StateHeld)
	waitPending(p3.ID)
	online(p3.ID)
	waitPaid(t, paid3)
	waitState(bob, p3.ID, senderclient.StateSettled)
	eventually(t, 30*time.Second, "carol's mailbox settled", func() error {
		asyncctlJSON(t, &st, carol.ctl("stats")...)
		if st.Mailbox["settled"] != 3 {
			return fmt.Errorf("carol's mailbox: %v", st.Mailbox)
		}
		return nil
	})

	// carol's credentials cannot read bob's inbound traffic or speak as bob.
	perms.checkIsolation(t, 1, net.Bob.PubKey, net.Carol.PubKey)

	carol.stop(t)
	bob.stop(t)
}
