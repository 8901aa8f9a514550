package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/cmd/asyncctl/ctl"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
)

// asyncctl runs the command line in-process and returns its output and
// exit code.
func asyncctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = ctl.Main(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// asyncctlOK runs the command line and fails the test unless it exits 0.
func asyncctlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := asyncctl(t, args...)
	if code != 0 {
		t.Fatalf("asyncctl %s: exit %d\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// asyncctlJSON runs the command line with --json and decodes its output.
func asyncctlJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := asyncctlOK(t, append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("asyncctl %s: output is not the JSON expected: %v\n%s",
			strings.Join(args, " "), err, out)
	}
}

// asyncctlFails runs the command line and wants exit code 1 with want on
// stderr and nothing on stdout.
func asyncctlFails(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, code := asyncctl(t, args...)
	if code != 1 || !strings.HasPrefix(errOut, "asyncctl: ") ||
		!strings.Contains(errOut, want) || out != "" {
		t.Fatalf("asyncctl %s: exit %d, stdout %q, stderr %q; want exit 1 and %q on stderr",
			strings.Join(args, " "), code, out, errOut, want)
	}
}

// The operator commands against two LSPs' real APIs (sender and receiver
// roles, admin endpoints, real SQLite, real NATS), tables and --json.
func TestAsyncctlOperator(t *testing.T) {
	srv := testkit.StartNATS(t)
	e := newLSPEnv(t, envOptions{urls: []string{srv.ClientURL()}, replicas: 1,
		ackWait: 5 * time.Second})
	e.upload(3)
	// bob's admin token where asynclspd keeps it: asyncctl finds it with
	// --datadir.
	bobDir := t.TempDir()
	writeFile(t, filepath.Join(bobDir, AdminTokenFile), e.bob.admin+"\n")
	bob := []string{"--rpcserver=" + e.bob.api.URL, "--datadir=" + bobDir}
	carol := []string{"--rpcserver=" + strings.TrimPrefix(e.carol.api.URL, "http://"),
		"--token=" + e.carol.admin}
	with := func(base []string, args ...string) []string {
		return append(append([]string{}, base...), args...)
	}

	var info adminclient.Info
	asyncctlJSON(t, &info, with(bob, "getinfo")...)
	if info.NodeKey != e.bob.key.String() || info.Roles[0] != RoleSender {
		t.Fatalf("getinfo: %+v", info)
	}
	if out := asyncctlOK(t, with(carol, "getinfo")...); !strings.Contains(out, e.carol.key.String()) ||
		!strings.Contains(out, "receiver") {
		t.Fatalf("getinfo table:\n%s", out)
	}

	// A wallet token, made and used.
	var created adminclient.CreatedToken
	asyncctlJSON(t, &created, with(bob, "tokens", "create", "--name=shop")...)
	if created.Token.Role != "wallet" || created.Bearer == "" {
		t.Fatalf("tokens create: %+v", created)
	}
	out := asyncctlOK(t, with(bob, "tokens", "list")...)
	if !strings.Contains(out, created.Token.ID) || !strings.Contains(out, "shop") ||
		strings.Contains(out, created.Bearer) {
		t.Fatalf("tokens list:\n%s", out)
	}
	shop := []string{"--rpcserver=" + e.bob.api.URL, "--token=" + created.Bearer}

	// pay prints the hold invoice; the fake sender pays it.
	var p senderclient.Payment
	asyncctlJSON(t, &p, with(shop, "pay", "--receiver="+e.dave.String(),
		"--receiver-lsp="+e.carol.key.String(), "--amt=21000")...)
	if p.State != senderclient.StateCreated || p.HoldInvoice == "" ||
		p.AmountMsat != 21_000_000 || p.Owner != "shop" {
		t.Fatalf("pay: %+v", p)
	}
	out = asyncctlOK(t, with(shop, "pay", "--receiver="+e.dave.String(),
		"--receiver-lsp="+e.carol.key.String(), "--amt=1000", "--idempotency-key=k1")...)
	if !strings.Contains(out, "hold_invoice:") || !strings.Contains(out, "amount_sat:") {
		t.Fatalf("pay table:\n%s", out)
	}
	hold, err := e.bob.store.Get(context.Background(), mustID(t, p.ID))
	if err != nil {
		t.Fatal(err)
	}
	height, _ := e.bobLnd.CurrentHeight(context.Background())
	if err := e.bobLnd.PayHoldInvoice(hold.PaymentHash, height+hold.CltvDelta); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "payment HELD", func() error {
		var got senderclient.Payment
		asyncctlJSON(t, &got, with(bob, "payments", "show", p.ID)...)
		if got.State != senderclient.StateHeld {
			return fmt.Errorf("state %s", got.State)
		}
		return nil
	})

	var page senderclient.Page
	asyncctlJSON(t, &page, with(bob, "payments", "list", "--state=held")...)
	if len(page.Payments) != 1 || page.Payments[0].ID != p.ID {
		t.Fatalf("payments list --state=held: %+v", page)
	}
	out = asyncctlOK(t, with(bob, "payments", "list", "--limit=1")...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[2], "(more: --cursor=") {
		t.Fatalf("payments list --limit=1:\n%s", out)
	}

	// carol's side: dave is registered with his stock, the payment waits
	// in his mailbox.
	var receivers adminclient.ReceiverPage
	asyncctlJSON(t, &receivers, with(carol, "receivers")...)
	if len(receivers.Receivers) != 1 || receivers.Receivers[0].NodeKey != e.dave.String() ||
		receivers.Receivers[0].Invoices.Reserved != 2 || receivers.Receivers[0].Invoices.Available != 1 {
		t.Fatalf("receivers: %+v", receivers)
	}
	eventually(t, 10*time.Second, "the payment in dave's mailbox", func() error {
		var mb adminclient.MailboxPage
		asyncctlJSON(t, &mb, with(carol, "mailbox", "--state=pending", "--receiver="+e.dave.String())...)
		if len(mb.Items) != 1 || mb.Items[0].HoldID != p.ID {
			return fmt.Errorf("mailbox %+v", mb.Items)
		}
		return nil
	})
	if out := asyncctlOK(t, with(carol, "mailbox")...); !strings.Contains(out, p.ID) || !strings.Contains(out, "pending") {
		t.Fatalf("mailbox table:\n%s", out)
	}

	// Had carol lost what she had stored, bob's operator has the held
	// payment announced to her again; she stores it once.
	announcedTo := func(want float64) func() error {
		return func() error {
			if n := announced(t, e.bob); n != want {
				return fmt.Errorf("%v announcements acknowledged, want %v", n, want)
			}
			return nil
		}
	}
	eventually(t, 10*time.Second, "carol acknowledged the payment", announcedTo(1))
	out = asyncctlOK(t, with(bob, "sender", "reannounce", "--receiver-lsp="+e.carol.key.String())...)
	if want := "1 held payment will be announced again to " + e.carol.key.String(); strings.TrimSpace(out) != want {
		t.Fatalf("sender reannounce: %q, want %q", out, want)
	}
	eventually(t, 10*time.Second, "the payment announced again", announcedTo(2))
	var again adminclient.Reannounced
	asyncctlJSON(t, &again, with(bob, "sender", "reannounce", "--receiver-lsp="+e.carol.key.String())...)
	if again.Reannounced != 1 {
		t.Fatalf("sender reannounce --json: %+v", again)
	}
	eventually(t, 10*time.Second, "the payment announced a third time", announcedTo(3))
	var mb adminclient.MailboxPage
	asyncctlJSON(t, &mb, with(carol, "mailbox")...)
	if len(mb.Items) != 1 || mb.Items[0].State != adminclient.MailboxPending {
		t.Fatalf("carol's mailbox after the announcements again: %+v", mb.Items)
	}
	asyncctlFails(t, "invalid_request", with(bob, "sender", "reannounce", "--receiver-lsp=02ab")...)
	asyncctlFails(t, "does not run the sender role",
		with(carol, "sender", "reannounce", "--receiver-lsp="+e.bob.key.String())...)

	// The operator cancels it; the sender's funds come back.
	var canceled senderclient.Payment
	asyncctlJSON(t, &canceled, with(bob, "payments", "cancel", p.ID)...)
	if canceled.State != senderclient.StateCanceled || canceled.Reason != string(holdstore.ReasonCanceledByOperator) {
		t.Fatalf("payments cancel: %+v", canceled)
	}
	eventually(t, 10*time.Second, "hold invoice canceled", func() error {
		if inv, _ := e.bobLnd.Invoice(hold.PaymentHash); inv.State.String() != "CANCELED" {
			return fmt.Errorf("hold invoice %s", inv.State)
		}
		return nil
	})

	var st adminclient.Stats
	asyncctlJSON(t, &st, with(bob, "stats")...)
	if st.Holds.ByState["CANCELED"] != 1 || st.Holds.ByState["CREATED"] != 1 || st.Tokens.Active != 2 {
		t.Fatalf("bob's stats: %+v", st)
	}
	eventually(t, 10*time.Second, "carol hears the cancel", func() error {
		asyncctlJSON(t, &st, with(carol, "stats")...)
		if st.Mailbox["canceled"] != 1 || st.Receivers != 1 {
			return fmt.Errorf("carol's stats: %+v", st)
		}
		return nil
	})
	if out := asyncctlOK(t, with(carol, "stats")...); !hasRow(out, "mailbox", "canceled", "1") {
		t.Fatalf("stats table:\n%s", out)
	}

	// A payment dave releases settles; canceling it then is refused.
	var p2 senderclient.Payment
	asyncctlJSON(t, &p2, with(shop, "pay", "--receiver="+e.dave.String(),
		"--receiver-lsp="+e.carol.key.String(), "--amt=5000")...)
	hold2, err := e.bob.store.Get(context.Background(), mustID(t, p2.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bobLnd.PayHoldInvoice(hold2.PaymentHash, height+hold2.CltvDelta); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.releaseLoop(ctx, 1) }()
	eventually(t, 10*time.Second, "second payment settled", func() error {
		var got senderclient.Payment
		asyncctlJSON(t, &got, with(bob, "payments", "show", p2.ID)...)
		if got.State != senderclient.StateSettled {
			return fmt.Errorf("state %s", got.State)
		}
		return nil
	})
	cancel()
	<-done
	asyncctlFails(t, "not_cancelable", with(bob, "payments", "cancel", p2.ID)...)
	if out := asyncctlOK(t, with(bob, "payments", "show", p2.ID)...); !strings.Contains(out, "SETTLED") {
		t.Fatalf("payments show:\n%s", out)
	}

	// Revoked, the wallet token stops working at once.
	asyncctlOK(t, with(bob, "tokens", "revoke", created.Token.ID)...)
	asyncctlFails(t, "unauthorized", with(shop, "payments", "list")...)
	// A wallet token is no operator.
	asyncctlFails(t, "forbidden", "--rpcserver="+e.bob.api.URL, "--token="+e.wallet(t), "stats")
}

// wallet makes a wallet token at bob.
func (e *lspEnv) wallet(t *testing.T) string {
	t.Helper()
	tok, _, err := e.bob.store.CreateToken(context.Background(), "other-wallet", holdstore.RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Usage errors and unreachable daemons: a message on stderr, exit code 1.
func TestAsyncctlErrors(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Please specify one command"},
		{"unknown command", []string{"frobnicate"}, "Unknown command"},
		{"unknown flag", []string{"stats", "--verbose"}, "unknown flag"},
		{"no admin token", []string{"--datadir=" + empty, "stats"}, "admin token cannot be read"},
		{"missing argument", []string{"--token=x.y", "payments", "show"}, "want exactly one argument, the payment id"},
		{"extra argument", []string{"--token=x.y", "stats", "now"}, "unexpected arguments"},
		{"required flag", []string{"--token=x.y", "tokens", "create"}, "--name"},
		{"bad choice", []string{"--token=x.y", "tokens", "create", "--name=a", "--role=root"}, "--role"},
		{"reannounce to nobody", []string{"--token=x.y", "sender", "reannounce"}, "--receiver-lsp"},
		{"pay without amount", []string{"--token=x.y", "pay", "--receiver=a", "--receiver-lsp=b"}, "--amt"},
		{"daemon down", []string{"--rpcserver=127.0.0.1:1", "--token=x.y", "stats"}, "connection refused"},
		{"tlscert missing", []string{"--tlscert=" + filepath.Join(empty, "tls.cert"), "--token=x.y", "stats"}, "--tlscert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := asyncctl(t, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Contains(out, "Usage") {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", code, out, errOut, tc.want)
			}
		})
	}
	out, _, code := asyncctl(t, "--help")
	if code != 0 || !strings.Contains(out, "receivers") || !strings.Contains(out, "--rpcserver") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	out, _, code = asyncctl(t, "receiver", "online", "--help")
	if code != 0 || !strings.Contains(out, "--lnd.macaroonpath") || !strings.Contains(out, "--ttl") {
		t.Fatalf("receiver online --help: exit %d\n%s", code, out)
	}
}

// announced is how many held_htlc_available the LSP's sender role had
// acknowledged by receiver LSPs.
func announced(t *testing.T, l *lsp) float64 {
	t.Helper()
	mfs, err := l.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "asynclsp_sender_announcements_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == "stored" {
					return counter(m)
				}
			}
		}
	}
	return 0
}

func mustID(t *testing.T, s string) holdstore.ID {
	t.Helper()
	id, err := holdstore.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// hasRow reports whether a table has a row of exactly these columns.
func hasRow(table string, cols ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		if slices.Equal(strings.Fields(line), cols) {
			return true
		}
	}
	return false
}

// --tlscert: asyncctl speaks HTTPS to an API whose certificate it is given,
// and refuses one it is not.
func TestAsyncctlTLS(t *testing.T) {
	e := newAdminEnv(t)
	srv := httptest.NewUnstartedServer(e.srv.Config.Handler)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cert := filepath.Join(t.TempDir(), "tls.cert")
	writeFile(t, cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE",
		Bytes: srv.Certificate().Raw})))
	addr := strings.TrimPrefix(srv.URL, "https://")

	var info adminclient.Info
	asyncctlJSON(t, &info, "--rpcserver="+addr, "--tlscert="+cert, "--token="+e.bearer, "getinfo")
	if info.Version != Version {
		t.Fatalf("getinfo over TLS: %+v", info)
	}
	asyncctlFails(t, "certificate", "--rpcserver=https://"+addr, "--token="+e.bearer, "getinfo")
	asyncctlFails(t, "HTTP 400", "--rpcserver="+addr, "--token="+e.bearer, "getinfo")
}
