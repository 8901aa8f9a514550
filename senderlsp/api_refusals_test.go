package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/senderlsp/client"
	dto "github.com/prometheus/client_model/go"
)

// While carol cannot serve invoices, every create toward her is refused
// with 503 receiver_lsp_unreachable, as before; the log says so once at
// WARN when she stops answering and once at INFO when she answers again,
// and the metric counts every refusal, by reason.
func TestAPICreateRefusalsLoggedOnce(t *testing.T) {
	a := newAPIHarness(t)
	logs := &capturedLogs{}
	api := a.m.APIHandler(APIConfig{Logger: slog.New(&captureHandler{logs: logs})})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	wallet, err := client.New(client.Config{URL: srv.URL,
		Token: a.token("wallet-a", holdstore.RoleWallet), Logger: testkit.Quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create := func(amount uint64) (*client.Payment, error) {
		p, _, err := wallet.CreatePayment(ctx, a.payReq(amount, holdstore.NewID().String()))
		return p, err
	}
	wantRefused := func(err error, code client.Code, status int) {
		t.Helper()
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Code != code || apiErr.Status != status {
			t.Fatalf("create: %v, want %d %s", err, status, code)
		}
	}
	refused := func(reason string) float64 {
		t.Helper()
		var m dto.Metric
		if err := a.m.metrics.refused.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	unreachable := func() []logLine { return logs.find(slog.LevelWarn, "receiver LSP unreachable") }
	again := func() []logLine { return logs.find(slog.LevelInfo, "receiver LSP answers again") }

	// carol is down: every create is refused, 8 at a time, the first
	// refusal logged.
	a.invoicesDown.Store(true)
	const n = 40
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range n / 8 {
				_, err := create(1_000_000)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantRefused(err, client.CodeReceiverLSPUnreachable, http.StatusServiceUnavailable)
	}
	if got := refused(codeReceiverLSPUnreachable); got != n {
		t.Fatalf("counted %v refusals, want %d", got, n)
	}
	if lines := unreachable(); len(lines) != 1 || lines[0].attrs["receiver_lsp"] != a.carol.String() ||
		!strings.Contains(lines[0].attrs["err"], "receiver LSP unreachable") ||
		lines[0].attrs["component"] != "senderapi" {
		t.Fatalf("outage logged as %+v", lines)
	}
	if lines := logs.atLeast(slog.LevelWarn); len(lines) != 1 {
		t.Fatalf("%d warnings or errors for one outage: %+v", len(lines), lines)
	}

	// carol answers again a minute later: logged once, with the count.
	a.advance(time.Minute)
	a.invoicesDown.Store(false)
	for range 3 {
		if _, err := create(1_000_000); err != nil {
			t.Fatal(err)
		}
	}
	if lines := again(); len(lines) != 1 || lines[0].attrs["receiver_lsp"] != a.carol.String() ||
		lines[0].attrs["refused"] != fmt.Sprint(n) || lines[0].attrs["unanswered_for"] != "1m0s" {
		t.Fatalf("recovery logged as %+v", lines)
	}

	// Refusals for what carol answered, or for the request itself, are
	// counted by their code and say nothing of an outage.
	reply := a.invoice
	a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, ErrorCode: onionmsg.ReplyNoInvoicesLeft}
	}
	_, err = create(1_000_000)
	wantRefused(err, client.CodeNoInvoice, http.StatusUnprocessableEntity)
	a.invoice = reply
	_, err = create(0)
	wantRefused(err, client.CodeInvalidRequest, http.StatusBadRequest)
	if refused(codeNoInvoice) != 1 || refused(codeInvalidRequest) != 1 ||
		refused(codeReceiverLSPUnreachable) != n {
		t.Fatalf("counted %v no_invoice, %v invalid_request, %v unreachable",
			refused(codeNoInvoice), refused(codeInvalidRequest),
			refused(codeReceiverLSPUnreachable))
	}

	// Down again: a new outage, logged again, once.
	a.invoicesDown.Store(true)
	for range 5 {
		_, err := create(1_000_000)
		wantRefused(err, client.CodeReceiverLSPUnreachable, http.StatusServiceUnavailable)
	}
	if len(unreachable()) != 2 || len(again()) != 1 || len(logs.atLeast(slog.LevelError)) != 0 {
		t.Fatalf("two outages logged as %+v", logs.atLeast(slog.LevelInfo))
	}
}

// capturedLogs keeps every line a logger wrote.
type capturedLogs struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// find is the lines at level whose message starts with prefix.
func (c *capturedLogs) find(level slog.Level, prefix string) []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logLine
	for _, l := range c.lines {
		if l.level == level && strings.HasPrefix(l.msg, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// atLeast is the lines at level or above.
func (c *capturedLogs) atLeast(level slog.Level) []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logLine
	for _, l := range c.lines {
		if l.level >= level {
			out = append(out, l)
		}
	}
	return out
}

// captureHandler is a slog.Handler that writes to a capturedLogs.
type captureHandler struct {
	logs  *capturedLogs
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	l := logLine{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		l.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		l.attrs[a.Key] = a.Value.String()
		return true
	})
	h.logs.mu.Lock()
	defer h.logs.mu.Unlock()
	h.logs.lines = append(h.logs.lines, l)
	return nil
}

func (h *captureHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &captureHandler{logs: h.logs, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }
