package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Bad requests are refused with a code, and nothing is stored or asked of
// the receiver LSP.
func TestAPIBadInputStoresNothing(t *testing.T) {
	a := newAPIHarness(t)
	var asked atomic.Int32
	answer := a.invoice
	a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		asked.Add(1)
		return answer(req)
	}
	tok := a.token("wallet-a", holdstore.RoleWallet)
	dave, carol := a.dave.String(), a.carol.String()
	body := func(fields string) string {
		return `{"receiver_key":"` + dave + `","receiver_lsp":"` + carol + `"` + fields + `}`
	}
	offCurve := "02" + strings.Repeat("00", 32)
	huge := body(`,"amount_msat":1000,"retry_policy":"` + strings.Repeat("x", 17<<10) + `"`)

	for _, c := range []struct {
		name, body, header string
		status             int
		code               string
	}{
		{"oversized", huge, "", 413, "request_too_large"},
		{"malformed JSON", `{"receiver_key":`, "", 400, "invalid_request"},
		{"syntax error", `{"receiver_key" "x"}`, "", 400, "invalid_request"},
		{"empty body", ``, "", 400, "invalid_request"},
		{"not an object", `[1, 2]`, "", 400, "invalid_request"},
		{"unknown field", body(`,"amount_msat":1000,"amount_sat":1`), "", 400, "invalid_request"},
		{"two objects", body(`,"amount_msat":1000`) + body(`,"amount_msat":1000`), "", 400, "invalid_request"},
		{"trailing garbage", body(`,"amount_msat":1000`) + "x", "", 400, "invalid_request"},
		{"bad key hex", strings.Replace(body(`,"amount_msat":1000`), dave, "02zz"+dave[4:], 1), "", 400, "invalid_request"},
		{"key off the curve", strings.Replace(body(`,"amount_msat":1000`), dave, offCurve, 1), "", 400, "invalid_request"},
		{"missing lsp", `{"receiver_key":"` + dave + `","amount_msat":1000}`, "", 400, "invalid_request"},
		{"zero amount", body(`,"amount_msat":0`), "", 400, "invalid_request"},
		{"no amount", body(``), "", 400, "invalid_request"},
		{"negative amount", body(`,"amount_msat":-5`), "", 400, "invalid_request"},
		{"fractional amount", body(`,"amount_msat":1.5`), "", 400, "invalid_request"},
		{"string amount", body(`,"amount_msat":"1000"`), "", 400, "invalid_request"},
		{"amount over the limit", body(fmt.Sprintf(`,"amount_msat":%d`, a.cfg.MaxAmountMsat+1)), "", 400, "invalid_request"},
		{"bad retry policy", body(`,"amount_msat":1000,"retry_policy":"eager"`), "", 400, "invalid_request"},
		{"bad sender node", body(`,"amount_msat":1000,"sender_node":"03"`), "", 400, "invalid_request"},
		{"hold seconds overflow", body(`,"amount_msat":1000,"max_hold_seconds":18446744073709551615`), "", 400, "invalid_request"},
		{"long idempotency key", body(`,"amount_msat":1000`), strings.Repeat("k", 129), 400, "invalid_request"},
		{"idempotency key with space", body(`,"amount_msat":1000`), "a b", 400, "invalid_request"},
	} {
		var hdr []string
		if c.header != "" {
			hdr = []string{"Idempotency-Key", c.header}
		}
		status, out, _ := a.call("POST", "/v1/payments", tok, c.body, hdr...)
		if status != c.status || errCode(out) != c.code || errMessage(out) == "" {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.code)
		}
	}

	// A body of unknown length (chunked) over the limit is cut at the
	// limit too.
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/payments",
		io.MultiReader(strings.NewReader(huge[:len(huge)/2]), strings.NewReader(huge[len(huge)/2:])))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversized body: length %d, status %d", req.ContentLength, resp.StatusCode)
	}

	ctx := context.Background()
	page, err := a.m.Payments(ctx, holdstore.Filter{})
	seq, _ := a.store.LastSeq(ctx)
	if err != nil || len(page.Holds) != 0 || seq != 0 || asked.Load() != 0 {
		t.Fatalf("after bad input: %d holds, last seq %d, %d invoice requests",
			len(page.Holds), seq, asked.Load())
	}

	// The same request, well formed, goes through.
	status, out, hdr := a.call("POST", "/v1/payments", tok, body(`,"amount_msat":1000`))
	if status != http.StatusCreated || hdr.Get("Location") != "/v1/payments/"+out["id"].(string) {
		t.Fatalf("good request: %d %v", status, out)
	}
}

// What the receiver LSP and lnd say reaches the wallet as a code, never as
// the detail behind it.
func TestAPICreateFailures(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	wallet := a.wallet("wallet-a")
	for _, c := range []struct {
		name  string
		reply onionmsg.ReplyErrorCode
		code  client.Code
	}{
		{"unknown receiver", onionmsg.ReplyUnknownReceiver, client.CodeReceiverUnknown},
		{"no invoice", onionmsg.ReplyNoInvoicesLeft, client.CodeNoInvoice},
		{"amount out of range", onionmsg.ReplyAmountOutOfRange, client.CodeAmountOutOfRange},
	} {
		a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
			return &onionmsg.InvoiceReply{HoldID: req.HoldID, ErrorCode: c.reply,
				ErrorMessage: "secret detail"}
		}
		_, _, err := wallet.CreatePayment(ctx, a.payReq(1000, ""))
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Code != c.code || apiErr.Status != 422 {
			t.Fatalf("%s: %v", c.name, err)
		}
	}

	// An invoice that pays someone else is unusable.
	mallory := a.carol
	a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		inv, _ := a.lnd.ReceiverInvoice(mallory, req.Amount, 24*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	_, _, err := wallet.CreatePayment(ctx, a.payReq(1000, ""))
	if !errors.Is(err, client.CodeBadInvoice) || strings.Contains(err.Error(), mallory.String()) {
		t.Fatalf("invoice for another node: %v", err)
	}

	// Too little outbound liquidity: try again later (503).
	a.invoice = func(req *onionmsg.InvoiceRequest) *onionmsg.InvoiceReply {
		inv, _ := a.lnd.ReceiverInvoice(a.dave, req.Amount, 24*time.Hour)
		return &onionmsg.InvoiceReply{HoldID: req.HoldID, Invoice: inv}
	}
	_, _, err = wallet.CreatePayment(ctx, a.payReq(uint64(lnwire.NewMSatFromSatoshis(9_999_999)), ""))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Code != client.CodeInsufficientLiquidity ||
		!apiErr.Temporary() || strings.Contains(apiErr.Message, "msat") {
		t.Fatalf("too large for the channel: %v", err)
	}
}

// Every error the Manager returns maps to its code and status, and the
// body keeps no detail of the wrapped error.
func TestAPIErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		code   string
		status int
	}{
		{ErrUnknownReceiver, codeReceiverUnknown, 422},
		{ErrNoInvoice, codeNoInvoice, 422},
		{ErrAmountOutOfRange, codeAmountOutOfRange, 422},
		{ErrBadInvoice, codeBadInvoice, 422},
		{ErrReceiverLSPUnreachable, codeReceiverLSPUnreachable, 503},
		{ErrInsufficientLiquidity, codeInsufficientLiquidity, 503},
		{ErrNoHTLCSlots, codeNoHTLCSlots, 503},
		{ErrNotFound, codeNotFound, 404},
		{holdstore.ErrNotFound, codeNotFound, 404},
		{ErrNotCancelable, codeNotCancelable, 409},
		{ErrStopped, codeUnavailable, 503},
		{holdstore.ErrClosed, codeUnavailable, 503},
		{errors.New("disk on fire"), codeInternal, 500},
		{&http.MaxBytesError{Limit: 1}, codeRequestTooLarge, 413},
	} {
		wrapped := fmt.Errorf("secret detail /var/lib/x: %w", c.err)
		pub := publicError(wrapped)
		if pub.Code != c.code || apiCodes[pub.Code] != c.status {
			t.Errorf("%v: %s (%d), want %s (%d)", c.err, pub.Code, apiCodes[pub.Code], c.code, c.status)
		}
		if strings.Contains(pub.Message, "secret") || strings.Contains(pub.Message, "fire") {
			t.Errorf("%v: message %q leaks the detail", c.err, pub.Message)
		}
	}
	// The client's own input errors keep their text: it is about the input.
	pub := publicError(fmt.Errorf("%w: amount must be positive", ErrInvalidRequest))
	if pub.Code != codeInvalidRequest || !strings.Contains(pub.Message, "amount must be positive") {
		t.Errorf("invalid request: %+v", pub)
	}
}

func TestAPIUnknownRoutesAndMethods(t *testing.T) {
	a := newAPIHarness(t)
	tok := a.token("wallet-a", holdstore.RoleWallet)
	for _, c := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v2/payments", 404, "not_found", ""},
		{"GET", "/v1/payments/", 404, "not_found", ""},
		{"DELETE", "/v1/payments", 405, "method_not_allowed", "POST, GET"},
		{"PUT", "/v1/payments/" + holdstore.NewID().String(), 405, "method_not_allowed", "GET"},
		{"GET", "/v1/payments/" + holdstore.NewID().String() + "/cancel", 405, "method_not_allowed", "POST"},
		{"POST", "/v1/events", 405, "method_not_allowed", "GET"},
	} {
		status, out, hdr := a.call(c.method, c.path, tok, "")
		if status != c.status || errCode(out) != c.code || hdr.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %v, Allow %q", c.method, c.path, status, out, hdr.Get("Allow"))
		}
	}
}
