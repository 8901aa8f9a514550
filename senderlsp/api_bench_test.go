package senderlsp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// noNet is a Messenger for benchmarks that never reach a receiver LSP.
type noNet struct{ self onionmsg.NodeKey }

func (n noNet) Self() onionmsg.NodeKey { return n.self }
func (noNet) Send(context.Context, onionmsg.NodeKey, onionmsg.Message) error {
	return errors.New("no network in this benchmark")
}
func (noNet) Request(context.Context, onionmsg.NodeKey, onionmsg.Message) (onionmsg.Message, error) {
	return nil, errors.New("no network in this benchmark")
}

// benchAPI serves the API of a Manager that is not running (reads need
// only the store) over loopback HTTP, with n payments of "wallet-a" in the
// store, one event each. It returns the payments' ids and a token of
// wallet-a.
func benchAPI(b *testing.B, n int) (*httptest.Server, []holdstore.ID, string) {
	b.Helper()
	clk := clock.NewDefaultClock()
	store, err := holdstore.Open(context.Background(), holdstore.Config{
		Path: filepath.Join(b.TempDir(), "bob.db"), Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	_, carol := testkit.Key(2)
	_, dave := testkit.Key(3)
	m, err := New(defaultTestConfig(), Deps{Store: store, Lnd: testkit.NewFakeLnd(clk, carol),
		Net: noNet{}, Clock: clk, Logger: testkit.Quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]holdstore.ID, n)
	err = store.Update(context.Background(), func(tx *holdstore.Tx) error {
		for i := range ids {
			var seed [8]byte
			binary.BigEndian.PutUint64(seed[:], uint64(i))
			h := &holdstore.Hold{
				ID: holdstore.NewID(), PaymentHash: lntypes.Hash(sha256.Sum256(seed[:])),
				Owner: "wallet-a", AmountMsat: 1_000_000, FeeMsat: 2_000,
				ReceiverKey: route.Vertex(dave), ReceiverLSP: route.Vertex(carol),
				ReceiverInvoice: "lnbcrt10u1receiver", HoldInvoice: "lnbcrt10u1hold",
				ReceiverInvoiceExpiry: time.Now().Add(24 * time.Hour),
				CltvDelta:             1008, RetryPolicy: holdstore.RetryPatient,
				DeadlineTime: time.Now().Add(12 * time.Hour),
			}
			ids[i] = h.ID
			if _, err := tx.Create(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := store.CreateToken(context.Background(), "wallet-a", holdstore.RoleWallet)
	if err != nil {
		b.Fatal(err)
	}
	api := m.APIHandler(APIConfig{Logger: testkit.Quiet()})
	srv := httptest.NewServer(api)
	b.Cleanup(srv.Close)
	b.Cleanup(api.Close)
	return srv, ids, tok
}

// BenchmarkAPIGetPayment: one GET /v1/payments/{id} through the Go client
// over loopback: token check, read, JSON both ways.
func BenchmarkAPIGetPayment(b *testing.B) {
	srv, ids, tok := benchAPI(b, 1000)
	c, err := client.New(client.Config{URL: srv.URL, Token: tok})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := c.Payment(ctx, ids[i%len(ids)].String()); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAPIEventStream: replaying the event log: one op opens
// /v1/events?after=0 and reads 1,000 events (store read, JSON, SSE framing,
// loopback). A wallet's stream also checks each payment's owner once;
// an admin's does not. Reports ns/event.
func BenchmarkAPIEventStream(b *testing.B) {
	const n = 1000
	srv, _, walletTok := benchAPI(b, n)
	adminTok := srv.Config.Handler.(*API).token(b, "ops", holdstore.RoleAdmin)
	for _, c := range []struct{ name, tok string }{
		{"wallet", walletTok}, {"admin", adminTok},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				readEvents(b, srv.URL, c.tok, n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// token issues a token in the API's store.
func (a *API) token(b *testing.B, name string, role holdstore.TokenRole) string {
	tok, _, err := a.m.store.CreateToken(context.Background(), name, role)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// readEvents reads n events from the start of the stream.
func readEvents(b *testing.B, url, tok string, n int) {
	req, _ := http.NewRequest("GET", url+"/v1/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	got := 0
	for got < n && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			got++
		}
	}
	if got != n {
		b.Fatalf("%d events, want %d: %v", got, n, sc.Err())
	}
}
