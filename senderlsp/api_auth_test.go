package senderlsp

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/holdstore"
)

func TestAPIAuthRefused(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	good := a.token("wallet-a", holdstore.RoleWallet)
	revoked := a.token("wallet-r", holdstore.RoleWallet)
	revokedID, _, _ := strings.Cut(revoked, ".")
	if err := a.store.RevokeToken(ctx, revokedID); err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(good, ".")
	wrong := []byte(secret)
	wrong[0] ^= 1

	body := `{"receiver_key":"` + a.dave.String() + `","receiver_lsp":"` +
		a.carol.String() + `","amount_msat":1000}`
	endpoints := []struct{ method, path, body string }{
		{"POST", "/v1/payments", body},
		{"GET", "/v1/payments", ""},
		{"GET", "/v1/payments/" + holdstore.NewID().String(), ""},
		{"POST", "/v1/payments/" + holdstore.NewID().String() + "/cancel", ""},
		{"GET", "/v1/events?after=0", ""},
	}
	for name, header := range map[string]string{
		"no token":     "",
		"basic":        "Basic " + good,
		"empty bearer": "Bearer ",
		"malformed":    "Bearer not-a-token",
		"wrong secret": "Bearer " + id + "." + string(wrong),
		"unknown id":   "Bearer 0123456789abcdef." + secret,
		"revoked":      "Bearer " + revoked,
	} {
		for _, e := range endpoints {
			var h []string
			if header != "" {
				h = []string{"Authorization", header}
			}
			status, out, hdr := a.call(e.method, e.path, "", e.body, h...)
			if status != http.StatusUnauthorized || errCode(out) != "unauthorized" ||
				!strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s, %s %s: %d %v", name, e.method, e.path, status, out)
			}
		}
	}
	if page, _ := a.m.Payments(ctx, holdstore.Filter{}); len(page.Holds) != 0 {
		t.Fatalf("refused callers created %d payments", len(page.Holds))
	}
	// The good token, in any case of "Bearer", works.
	for _, scheme := range []string{"Bearer ", "bearer "} {
		status, out, _ := a.call("GET", "/v1/payments", "", "", "Authorization", scheme+good)
		if status != http.StatusOK {
			t.Fatalf("%q: %d %v", scheme, status, out)
		}
	}
}

// A wallet cannot see, cancel or follow another wallet's payment, nor tell
// that it exists; the operator can.
func TestAPIWalletsAreIsolated(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	tokA, tokB := a.token("wallet-a", holdstore.RoleWallet), a.token("wallet-b", holdstore.RoleWallet)
	admin := a.token("ops", holdstore.RoleAdmin)
	p := a.createVia(a.client(tokA), 10_000_000)

	_, missing, _ := a.call("GET", "/v1/payments/"+holdstore.NewID().String(), tokB, "")
	for _, e := range []struct{ method, path string }{
		{"GET", "/v1/payments/" + p.ID},
		{"POST", "/v1/payments/" + p.ID + "/cancel"},
	} {
		status, out, _ := a.call(e.method, e.path, tokB, "")
		if status != http.StatusNotFound || errCode(out) != "not_found" ||
			errMessage(out) != errMessage(missing) {
			t.Fatalf("B: %s %s: %d %v (a missing payment: %v)", e.method, e.path, status, out, missing)
		}
	}
	if got := a.get(a.hold(p).ID); got.State != holdstore.StateCreated {
		t.Fatalf("B's cancel moved A's payment to %s", got.State)
	}
	status, out, _ := a.call("GET", "/v1/payments", tokB, "")
	if status != http.StatusOK || len(out["payments"].([]any)) != 0 {
		t.Fatalf("B lists %d %v", status, out)
	}
	status, out, _ = a.call("GET", "/v1/payments/"+p.ID, admin, "")
	if status != http.StatusOK || out["id"] != p.ID || out["owner"] != "wallet-a" {
		t.Fatalf("admin get: %d %v", status, out)
	}

	// B's stream from the start skips A's events: its first event is its
	// own payment's, made after A's were.
	streamB, _ := a.rawStream(ctx, "?after=0", tokB)
	streamAdmin, _ := a.rawStream(ctx, "?after=0", admin)
	q := a.createVia(a.client(tokB), 10_000_000)
	ev, _ := nextEvent(t, streamB)
	if ev.HoldID.String() != q.ID {
		t.Fatalf("B's first event is of %s, want its own %s", ev.HoldID, q.ID)
	}
	// The operator sees A's first.
	if ev, _ := nextEvent(t, streamAdmin); ev.HoldID.String() != p.ID {
		t.Fatalf("admin's first event is of %s, want A's %s", ev.HoldID, p.ID)
	}
	if ev, _ := nextEvent(t, streamAdmin); ev.HoldID.String() != q.ID {
		t.Fatalf("admin's second event is of %s, want B's %s", ev.HoldID, q.ID)
	}
	status, out, _ = a.call("POST", "/v1/payments/"+p.ID+"/cancel", admin, "")
	if status != http.StatusOK || out["reason"] != string(holdstore.ReasonCanceledByOperator) {
		t.Fatalf("admin cancel: %d %v", status, out)
	}
}
