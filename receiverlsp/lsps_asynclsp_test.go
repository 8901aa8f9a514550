package receiverlsp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// signedRelease is rc's BIP-340 release of m, hex.
func (e *env) signedRelease(rc *receiver, m *onionmsg.HeldHTLCAvailable) string {
	e.t.Helper()
	rel := onionmsg.NewRelease(m, e.clock.Now(), 10*time.Minute)
	if err := rel.Sign(e.ctx, rc.signer); err != nil {
		e.t.Fatal(err)
	}
	raw, err := rel.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	return hex.EncodeToString(raw)
}

// The asynclsp.* methods do what their HTTP routes do, with the same
// results, and map the role's errors to their codes.
func TestAsynclspMethods(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")

	// asynclsp.add_invoices: POST /v1/invoices.
	invs := []string{e.invoice(rc, testkit.InvoiceOpts{}), e.invoice(rc, testkit.InvoiceOpts{}),
		"lnbcrt1notaninvoice"}
	var up client.UploadResponse
	e.lspsOK(rc.key, client.MethodAddInvoices, client.UploadRequest{Invoices: invs}, &up)
	if up.Accepted != 2 || up.Rejected != 1 || up.Results[2].Reason != client.RejectMalformed {
		t.Fatalf("add_invoices: %+v", up)
	}
	_, lerr := e.lsps(rc.key, client.MethodAddInvoices, client.UploadRequest{})
	wantLSPSCode(t, "no invoices", lerr, client.LSPSInvalidRequest)
	many := make([]string, e.role.opts.MaxUpload+1)
	for i := range many {
		many[i] = "x"
	}
	_, lerr = e.lsps(rc.key, client.MethodAddInvoices, client.UploadRequest{Invoices: many})
	wantLSPSCode(t, "too many invoices", lerr, client.LSPSTooLarge)

	// asynclsp.invoice_stock: GET /v1/invoices.
	var stock client.InvoiceCounts
	e.lspsOK(rc.key, client.MethodInvoiceStock, nil, &stock)
	if viaHTTP, _ := rc.client.Counts(e.ctx); stock != *viaHTTP || stock.Available != 2 {
		t.Fatalf("invoice_stock %+v, GET /v1/invoices %+v", stock, viaHTTP)
	}

	// asynclsp.list_mailbox and get_item: GET /v1/mailbox[/...].
	m := e.hold(0, rc)
	var mb client.MailboxResponse
	e.lspsOK(rc.key, client.MethodListMailbox, nil, &mb)
	viaHTTP, _ := rc.client.Mailbox(e.ctx)
	if len(mb.Items) != 1 || mb.More || !reflect.DeepEqual(mb.Items, viaHTTP) {
		t.Fatalf("list_mailbox %+v, GET /v1/mailbox %+v", mb, viaHTTP)
	}
	var it client.Item
	e.lspsOK(rc.key, client.MethodGetItem, client.GetItemParams{
		SenderLSP: m.SenderLSPKey.String(), HoldID: m.HoldID.String()}, &it)
	if it.State != client.StatePending || it.HoldID != m.HoldID ||
		!strings.HasPrefix(it.Sign, onionmsg.ReleaseMessagePrefix) {
		t.Fatalf("get_item %+v", it)
	}
	_, lerr = e.lsps(rc.key, client.MethodGetItem, client.GetItemParams{
		SenderLSP: "zz", HoldID: m.HoldID.String()})
	wantLSPSCode(t, "bad sender_lsp", lerr, client.LSPSInvalidRequest)
	_, lerr = e.lsps(rc.key, client.MethodGetItem, client.GetItemParams{
		SenderLSP: m.SenderLSPKey.String(), HoldID: onionmsg.NewHoldID().String()})
	wantLSPSCode(t, "unknown hold", lerr, client.LSPSNotFound)
	// Another receiver does not see rc's item.
	other := e.receiver(1)
	_, lerr = e.lsps(other.key, client.MethodGetItem, client.GetItemParams{
		SenderLSP: m.SenderLSPKey.String(), HoldID: m.HoldID.String()})
	wantLSPSCode(t, "another receiver's item", lerr, client.LSPSNotFound)

	// asynclsp.release: POST /v1/releases.
	rel := e.signedRelease(rc, m)
	e.unchanged("a release by another peer", func() {
		_, lerr := e.lsps(other.key, client.MethodRelease, client.ReleaseRequest{Release: rel})
		wantLSPSCode(t, "another peer's release", lerr, client.LSPSForbidden)
	})
	_, lerr = e.lsps(rc.key, client.MethodRelease, client.ReleaseRequest{Release: "not hex"})
	wantLSPSCode(t, "bad hex", lerr, client.LSPSInvalidRequest)
	e.lspsOK(rc.key, client.MethodRelease, client.ReleaseRequest{Release: rel}, &it)
	if it.State != client.StateReleased || len(e.out.Sent()) != 1 {
		t.Fatalf("after release: %+v, %d sent", it, len(e.out.Sent()))
	}
	// Released: a new release for it conflicts with nothing, but the
	// item is no longer listed.
	e.lspsOK(rc.key, client.MethodListMailbox, nil, &mb)
	if len(mb.Items) != 0 {
		t.Fatalf("listed after release: %+v", mb.Items)
	}

	// asynclsp.release_ln: the listing's own text, signed with
	// signmessage, as a wallet with only signmessage releases.
	e.hold(0, rc)
	e.lspsOK(rc.key, client.MethodListMailbox, nil, &mb)
	if len(mb.Items) != 1 || !strings.HasPrefix(mb.Items[0].Sign, onionmsg.ReleaseMessagePrefix) {
		t.Fatalf("list_mailbox offers no release text: %+v", mb.Items)
	}
	text := mb.Items[0].Sign
	sig, err := rc.signer.SignMessage(e.ctx, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := other.signer.SignMessage(e.ctx, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	e.unchanged("bad ln releases", func() {
		for name, tc := range map[string]struct {
			peer      onionmsg.NodeKey
			text, sig string
			code      int
		}{
			"another key's signature": {rc.key, text, otherSig, client.LSPSInvalidRequest},
			"a text of our own":       {rc.key, "asynclsp release: hello", sig, client.LSPSInvalidRequest},
			"the text edited":         {rc.key, text[:len(text)-2] + "00", sig, client.LSPSInvalidRequest},
			"not zbase32":             {rc.key, text, strings.ToUpper(sig), client.LSPSInvalidRequest},
			"sent by another peer":    {other.key, text, sig, client.LSPSForbidden},
		} {
			_, lerr := e.lsps(tc.peer, client.MethodReleaseLN,
				client.ReleaseLNParams{Message: tc.text, Signature: tc.sig})
			wantLSPSCode(t, name, lerr, tc.code)
		}
	})
	e.lspsOK(rc.key, client.MethodReleaseLN, client.ReleaseLNParams{Message: text, Signature: sig}, &it)
	if it.State != client.StateReleased || len(e.out.Sent()) != 2 {
		t.Fatalf("after release_ln: %+v, %d sent", it, len(e.out.Sent()))
	}

	// The unavailable store is -31503, retry.
	e.store.Close()
	_, lerr = e.lsps(rc.key, client.MethodInvoiceStock, nil)
	wantLSPSCode(t, "store closed", lerr, client.LSPSUnavailable)
}

// A peer that calls an asynclsp.* method over BOLT8 without registering is
// made a receiver on the spot, without a token: it can keep invoices here.
func TestReceiverOnDemand(t *testing.T) {
	e := newEnv(t)
	rc := e.receiver(0) // not registered
	var stock client.InvoiceCounts
	e.lspsOK(rc.key, client.MethodInvoiceStock, nil, &stock)
	rec, err := e.store.Receiver(e.ctx, vertex(rc.key))
	if err != nil || rec.HasToken {
		t.Fatalf("receiver %+v, %v", rec, err)
	}
	var up client.UploadResponse
	e.lspsOK(rc.key, client.MethodAddInvoices, client.UploadRequest{
		Invoices: []string{e.invoice(rc, testkit.InvoiceOpts{})}}, &up)
	if up.Accepted != 1 {
		t.Fatalf("upload over LSPS0: %+v", up)
	}
	// No token works for it over HTTP (its token hash is NULL, read as
	// zeros, which no secret hashes to); registering gives one.
	for _, secret := range []string{strings.Repeat("0", 64), strings.Repeat("f", 64)} {
		c, _ := client.New(client.Config{BaseURL: e.api.URL, NodeKey: rc.key,
			Signer: rc.signer, Token: rc.key.String() + "." + secret})
		_, err = c.Counts(e.ctx)
		wantCode(t, "a made-up token", err, client.CodeUnauthorized)
	}
	if _, err := rc.client.Register(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	if c, err := rc.client.Counts(e.ctx); err != nil || c.Available != 1 {
		t.Fatalf("after registering: %+v, %v", c, err)
	}
	// lsps5.set_webhook makes one too.
	peer := e.receiver(1).key
	e.lspsOK(peer, client.MethodSetWebhook, setParams("a", "https://a.example/"), nil)
	if rec, err := e.store.Receiver(e.ctx, vertex(peer)); err != nil || rec.HasToken {
		t.Fatalf("set_webhook's receiver %+v, %v", rec, err)
	}
}

// POST /v1/lsps0 answers what lnd's custom messages get answered, byte for
// byte, for the token's receiver.
func TestLSPS0OverHTTP(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 2, 0)
	e.hold(0, rc)
	for _, c := range []struct {
		method string
		params any
	}{
		{"lsps0.list_protocols", nil},
		{client.MethodListWebhooks, nil},
		{client.MethodInvoiceStock, nil},
		{client.MethodListMailbox, nil},
		{client.MethodRemoveWebhook, client.RemoveWebhookParams{AppName: "none"}},
		{client.MethodGetItem, client.GetItemParams{SenderLSP: "zz", HoldID: "00"}},
		{"asynclsp.nosuch", nil},
	} {
		req := lspsRequest(t, c.method, c.params)
		direct := e.role.LSPS().Answer(e.ctx, rc.key, req)
		if got := e.postLSPS0(rc, req); !bytes.Equal(got, direct) {
			t.Errorf("%s:\n HTTP %s\nBOLT8 %s", c.method, got, direct)
		}
	}
	if got := e.postLSPS0(rc, []byte("{")); !strings.Contains(string(got), "-32700") {
		t.Fatalf("a parse error over HTTP: %s", got)
	}
}

// A POST /v1/lsps0 body over the largest LSPS0 message is refused as every
// route refuses one (openapi.json's E413): 413 with the API's error body,
// payload_too_large. It was answered with lsps0's JSON-RPC -32700, which a
// client reading the API's errors cannot decode. FuzzAPI's seed
// lsps0-oversized found it.
func TestLSPS0OverHTTPTooLarge(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	body := `{"jsonrpc":"2.0","id":"` + strings.Repeat("x", lsps0.MaxMessageSize) + `"}`
	req, _ := http.NewRequest(http.MethodPost, e.api.URL+"/v1/lsps0", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+rc.client.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var er client.ErrorResponse
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&er); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge ||
		er.Error.Code != client.CodePayloadTooLarge {
		t.Fatalf("%s: %+v, %v", resp.Status, er, err)
	}
}

// A listing over LSPS0 fits one message: the items that fit, and more.
func TestListMailboxFitsOneMessage(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Options.MaxPendingPerReceiver, c.Options.MaxPendingPerSender = 150, 150
		c.Options.MaxUpload, c.Options.MaxStock = 200, 200
	})
	rc := e.registered(0, "")
	e.stock(rc, 120, 0)
	for range 120 {
		e.hold(0, rc)
	}
	raw := e.role.LSPS().Answer(e.ctx, rc.key, lspsRequest(t, client.MethodListMailbox, nil))
	if len(raw) > lsps0.MaxMessageSize {
		t.Fatalf("a response of %d bytes", len(raw))
	}
	var resp struct {
		Result client.MailboxResponse `json:"result"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Result.More || len(resp.Result.Items) == 0 || len(resp.Result.Items) >= 120 {
		t.Fatalf("%d items, more %v", len(resp.Result.Items), resp.Result.More)
	}
	all, _ := rc.client.Mailbox(e.ctx)
	if len(all) != 120 || !reflect.DeepEqual(all[:len(resp.Result.Items)], resp.Result.Items) {
		t.Fatal("the LSPS0 listing is not the HTTP one's first items")
	}
}

// Each of the role's errors has its code; any other error stays internal
// (-32603, its detail only logged).
func TestLSPSErrorMapping(t *testing.T) {
	e := newEnv(t)
	peer := e.receiver(0).key
	for _, c := range []struct {
		err  error
		code int
	}{
		{ErrInvalid, client.LSPSInvalidRequest},
		{ErrForbidden, client.LSPSForbidden},
		{ErrNotFound, client.LSPSNotFound},
		{ErrConflict, client.LSPSConflict},
		{ErrTooLarge, client.LSPSTooLarge},
		{ErrUnavailable, client.LSPSUnavailable},
		{errTooManyWebhooks(3), client.LSPS5TooManyWebhooks},
		{holdstore.ErrCorrupt, 0},
	} {
		got := e.role.lspsError(peer, c.err)
		var le *lsps0.Error
		if errors.As(got, &le) != (c.code != 0) || (le != nil && le.Code != c.code) {
			t.Errorf("%v: mapped to %v, want code %d", c.err, got, c.code)
		}
	}
}
