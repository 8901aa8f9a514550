package receiverlsp

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/btcsuite/btcd/chaincfg"
)

// An upload keeps exactly the invoices that pass every check, says why of
// each other, and stores nothing for them.
func TestUploadChecksEveryInvoice(t *testing.T) {
	e := newEnv(t)
	rc, other := e.registered(0, ""), e.registered(1, "")
	_, stranger := testkit.Key(3)
	now := e.clock.Now()

	amountless := e.invoice(rc, testkit.InvoiceOpts{})
	fixed := e.invoice(rc, testkit.InvoiceOpts{Amount: 25_000})
	stored := e.invoice(rc, testkit.InvoiceOpts{})
	if resp, err := rc.client.Upload(e.ctx, []string{stored}); err != nil || resp.Accepted != 1 {
		t.Fatalf("first upload: %+v, %v", resp, err)
	}
	cases := []struct {
		name    string
		invoice string
		reason  string
	}{
		{"amountless", amountless, ""},
		{"fixed", strings.ToUpper(fixed), ""},
		{"another node's", e.invoice(other, testkit.InvoiceOpts{}), client.RejectWrongNode},
		{"expired", e.invoice(rc, testkit.InvoiceOpts{Created: now.Add(-2 * time.Hour),
			Expiry: time.Hour}), client.RejectExpired},
		{"short-lived", e.invoice(rc, testkit.InvoiceOpts{Expiry: 23 * time.Hour}),
			client.RejectShortLived},
		{"hint through another node", e.invoice(rc, testkit.InvoiceOpts{Hint: stranger}),
			client.RejectNoRouteHint},
		{"no route hint", func() string {
			s, _ := testkit.Invoice(t, rc.priv, testkit.InvoiceOpts{Created: now,
				Expiry: 48 * time.Hour})
			return s
		}(), client.RejectNoRouteHint},
		{"mainnet", e.invoice(rc, testkit.InvoiceOpts{Net: &chaincfg.MainNetParams}),
			client.RejectMalformed},
		{"garbage", "lnbcrt1notaninvoice", client.RejectMalformed},
		{"broken checksum", amountless[:len(amountless)-10] + "qqqqqqqqqq", client.RejectMalformed},
		{"tampered after signing", testkit.Tamper(t, e.invoice(rc, testkit.InvoiceOpts{})),
			client.RejectWrongNode},
		{"tampered, explicit payee", testkit.Tamper(t, e.invoice(rc,
			testkit.InvoiceOpts{ExplicitPayee: true})), client.RejectMalformed},
		{"uploaded before", stored, client.RejectDuplicate},
		{"twice in one batch", amountless, client.RejectDuplicate},
		{"too long", "lnbcrt1" + strings.Repeat("q", 7100), client.RejectTooLong},
	}
	batch := make([]string, len(cases))
	for i, c := range cases {
		batch[i] = c.invoice
	}
	resp, err := rc.client.Upload(e.ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		got := resp.Results[i]
		if got.Index != i || got.Accepted != (c.reason == "") || got.Reason != c.reason {
			t.Errorf("%s: %+v, want reason %q", c.name, got, c.reason)
		}
		if !got.Accepted && got.Message == "" {
			t.Errorf("%s: refused without a message", c.name)
		}
	}
	if resp.Accepted != 2 || resp.Rejected != len(cases)-2 {
		t.Fatalf("accepted %d, rejected %d", resp.Accepted, resp.Rejected)
	}
	want := client.InvoiceCounts{Available: 3, LowThreshold: 10}
	if resp.Counts != want {
		t.Fatalf("counts %+v, want %+v", resp.Counts, want)
	}
	counts, err := rc.client.Counts(e.ctx)
	if err != nil || *counts != want {
		t.Fatalf("GET counts %+v, %v", counts, err)
	}
	// A batch of only refusals stores nothing at all.
	e.unchanged("refused invoices", func() {
		resp, err := rc.client.Upload(e.ctx, batch[2:])
		if err != nil || resp.Accepted != 0 {
			t.Fatalf("%+v, %v", resp, err)
		}
	})
	// Expired stock is counted apart.
	e.advance(49 * time.Hour)
	counts, _ = rc.client.Counts(e.ctx)
	if counts.Available != 0 || counts.Expired != 3 {
		t.Fatalf("after expiry: %+v", counts)
	}
}

func TestUploadLimits(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Options.MaxUpload, c.Options.MaxStock, c.Options.LowThreshold = 3, 4, 1
	})
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	resp, err := rc.client.Upload(e.ctx, []string{
		e.invoice(rc, testkit.InvoiceOpts{}), e.invoice(rc, testkit.InvoiceOpts{}),
	})
	if err != nil || resp.Accepted != 1 || resp.Results[1].Reason != client.RejectStockFull ||
		resp.Counts.Available != 4 {
		t.Fatalf("over the stock limit: %+v, %v", resp, err)
	}
	e.unchanged("too many invoices", func() {
		invs := make([]string, 4)
		for i := range invs {
			invs[i] = e.invoice(rc, testkit.InvoiceOpts{})
		}
		_, err := rc.client.Upload(e.ctx, invs)
		wantCode(t, "4 invoices", err, client.CodePayloadTooLarge)
		_, err = rc.client.Upload(e.ctx, nil)
		wantCode(t, "no invoices", err, client.CodeInvalidRequest)
	})
	e.unchanged("a body over the limit", func() {
		big := `{"invoices":["` + strings.Repeat("x", uploadBody) + `"]}`
		req, _ := http.NewRequest("POST", e.api.URL+"/v1/invoices", strings.NewReader(big))
		req.Header.Set("Authorization", "Bearer "+rc.client.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	// Unauthenticated uploads never reach the checks.
	e.unchanged("no token", func() {
		resp, err := http.Post(e.api.URL+"/v1/invoices", "application/json",
			strings.NewReader(`{"invoices":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
