package daemon

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// benchAdmin is the admin API over a store with receivers receivers, each
// with items mailbox items (one in ten pending) and as many spare invoices.
func benchAdmin(b *testing.B, receivers, items int) (*adminAPI, string, []route.Vertex) {
	b.Helper()
	clk := clock.NewTestClock(adminStart)
	ctx := context.Background()
	store, err := holdstore.Open(ctx, holdstore.Config{
		Path: filepath.Join(b.TempDir(), "asynclsp.db"), Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	token, _, err := store.CreateToken(ctx, "operator", holdstore.RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	sender := key(30)
	keys := make([]route.Vertex, receivers)
	for r := range receivers {
		keys[r] = key(1000 + r)
		err := store.Update(ctx, func(tx *holdstore.Tx) error {
			if err := tx.PutReceiver(keys[r], [32]byte{1}, ""); err != nil {
				return err
			}
			for i := range 2 * items {
				var hash lntypes.Hash
				rand.Read(hash[:])
				if _, err := tx.AddInvoice(&holdstore.ReceiverInvoice{PaymentHash: hash,
					ReceiverKey: keys[r], Invoice: "lnbcrt-bench",
					ExpiresAt: adminStart.Add(48*time.Hour + time.Duration(i))}); err != nil {
					return err
				}
			}
			for i := range items {
				it := &holdstore.MailboxItem{SenderLSP: sender, HoldID: holdstore.NewID(),
					ReceiverKey: keys[r], AmountMsat: 50_000, DeadlineHeight: 2000,
					DeadlineTime: adminStart.Add(time.Hour), State: holdstore.MailboxSettled}
				if i%10 == 0 {
					it.State = holdstore.MailboxPending
				}
				rand.Read(it.ReleaseSecret[:])
				inv, err := tx.ReserveFirst(keys[r], 0, adminStart, sender, it.HoldID, it.AmountMsat)
				if err != nil {
					return err
				}
				it.PaymentHash = inv.PaymentHash
				if err := tx.AddMailboxItem(it); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		clk.SetTime(clk.Now().Add(time.Second))
	}
	api := newAdminAPI(store, nil, adminclient.Info{}, clk, testkit.Quiet())
	return api, token, keys
}

func benchGet(b *testing.B, api *adminAPI, token, path string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
	}
}

// The newest page of a 10 000-item mailbox: every receiver's, and one
// receiver's; no index covers the former's order.
func BenchmarkAdminMailbox(b *testing.B) {
	api, token, keys := benchAdmin(b, 100, 100)
	b.Run("all/100-of-10000", func(b *testing.B) {
		benchGet(b, api, token, "/v1/admin/mailbox")
	})
	b.Run("pending/100-of-1000", func(b *testing.B) {
		benchGet(b, api, token, "/v1/admin/mailbox?state=pending")
	})
	b.Run("receiver/100-of-100", func(b *testing.B) {
		benchGet(b, api, token, "/v1/admin/mailbox?receiver="+keys[50].String())
	})
}

// A page of 100 receivers with their counts, and the totals, over 100
// receivers with 300 invoices and 100 items each.
func BenchmarkAdminCounts(b *testing.B) {
	api, token, _ := benchAdmin(b, 100, 100)
	b.Run("receivers/100", func(b *testing.B) {
		benchGet(b, api, token, "/v1/admin/receivers")
	})
	b.Run("stats", func(b *testing.B) {
		benchGet(b, api, token, "/v1/admin/stats")
	})
}
