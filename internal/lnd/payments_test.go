package lnd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests script lnd's router to break at the awkward moments of a
// payment, which a real lnd does not do on demand.

// item is one result of a scripted stream's Recv.
type item struct {
	msg *lnrpc.Payment
	err error
}

// fakeStream returns its items, then blocks until its context ends.
type fakeStream struct {
	grpc.ClientStream
	ctx   context.Context
	items []item
}

func (s *fakeStream) Recv() (*lnrpc.Payment, error) {
	if len(s.items) == 0 {
		<-s.ctx.Done()
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
	it := s.items[0]
	s.items = s.items[1:]

	return it.msg, it.err
}

// fakeRouter plays scripted streams for SendPaymentV2 and TrackPaymentV2,
// in order, and counts the calls.
type fakeRouter struct {
	routerrpc.RouterClient

	mu             sync.Mutex
	sends, tracks  [][]item
	nSend, nTrack  int
	unexpectedCall bool
}

func (f *fakeRouter) RawClientWithMacAuth(ctx context.Context) (
	context.Context, time.Duration, routerrpc.RouterClient) {

	return ctx, time.Second, f
}

func (f *fakeRouter) SendPaymentV2(ctx context.Context,
	_ *routerrpc.SendPaymentRequest, _ ...grpc.CallOption) (
	routerrpc.Router_SendPaymentV2Client, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nSend >= len(f.sends) {
		f.unexpectedCall = true
		return nil, status.Error(codes.Internal, "unexpected send")
	}
	f.nSend++

	return &fakeStream{ctx: ctx, items: f.sends[f.nSend-1]}, nil
}

func (f *fakeRouter) TrackPaymentV2(ctx context.Context,
	_ *routerrpc.TrackPaymentRequest, _ ...grpc.CallOption) (
	routerrpc.Router_TrackPaymentV2Client, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nTrack >= len(f.tracks) {
		f.unexpectedCall = true
		return nil, status.Error(codes.Internal, "unexpected track")
	}
	f.nTrack++

	return &fakeStream{ctx: ctx, items: f.tracks[f.nTrack-1]}, nil
}

func (f *fakeRouter) calls() (int, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()

	return f.nSend, f.nTrack, f.unexpectedCall
}

// testInvoice returns a signed regtest invoice for hash.
func testInvoice(t *testing.T, hash lntypes.Hash) string {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := zpay32.NewInvoice(
		&chaincfg.RegressionNetParams, hash, time.Now(),
		zpay32.Amount(lnwire.MilliSatoshi(1_000_000)),
		zpay32.Description("test"), zpay32.PaymentAddr([32]byte{1}),
	)
	if err != nil {
		t.Fatal(err)
	}
	payReq, err := inv.Encode(zpay32.MessageSigner{
		SignCompact: func(msg []byte) ([]byte, error) {
			return ecdsa.SignCompact(key, chainhash.HashB(msg), true),
				nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	return payReq
}

func TestSendPaymentAcrossConnectionLoss(t *testing.T) {
	pre := lntypes.Preimage{7}
	hash := pre.Hash()
	inFlight := &lnrpc.Payment{
		PaymentHash: hash.String(), Status: lnrpc.Payment_IN_FLIGHT,
	}
	succeeded := &lnrpc.Payment{
		PaymentHash: hash.String(), Status: lnrpc.Payment_SUCCEEDED,
		PaymentPreimage: pre.String(),
	}
	unavailable := status.Error(codes.Unavailable, "connection reset")
	exists := status.Error(codes.AlreadyExists, "payment is in transition")

	tests := []struct {
		name             string
		sends, tracks    [][]item
		wantSends, wantT int
		wantErr          error
	}{{
		name:      "stream breaks after lnd took the payment: tracked",
		sends:     [][]item{{{msg: inFlight}, {err: unavailable}}},
		tracks:    [][]item{{{msg: inFlight}, {msg: succeeded}}},
		wantSends: 1, wantT: 1,
	}, {
		name:      "send lost before lnd answered, lnd has it: tracked",
		sends:     [][]item{{{err: unavailable}}, {{err: exists}}},
		tracks:    [][]item{{{msg: inFlight}, {msg: succeeded}}},
		wantSends: 2, wantT: 1,
	}, {
		name: "send lost before lnd recorded it: sent again",
		sends: [][]item{{{err: unavailable}},
			{{msg: inFlight}, {msg: succeeded}}},
		wantSends: 2, wantT: 0,
	}, {
		name:      "already in flight: refused, not tracked",
		sends:     [][]item{{{err: exists}}},
		wantSends: 1, wantT: 0,
		wantErr: ErrPaymentExists,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			router := &fakeRouter{sends: tc.sends, tracks: tc.tracks}
			c := testClient(time.Minute)
			c.params = &chaincfg.RegressionNetParams
			c.routerSvc = router
			defer c.Close()

			ctx, cancel := context.WithTimeout(
				context.Background(), 10*time.Second,
			)
			defer cancel()
			sub, err := c.SendPayment(ctx, SendPaymentRequest{
				Invoice: testInvoice(t, hash), FeeLimitMsat: 1000,
			})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("SendPayment = %v, want %v", err,
						tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var statuses []PaymentStatus
				for p := range sub.Updates() {
					statuses = append(statuses, p.Status)
				}
				if sub.Err() != nil || len(statuses) != 2 ||
					statuses[0] != PaymentInFlight ||
					statuses[1] != PaymentSucceeded {

					t.Fatalf("updates %v, err %v", statuses,
						sub.Err())
				}
			}

			sends, tracks, unexpected := router.calls()
			if sends != tc.wantSends || tracks != tc.wantT ||
				unexpected {

				t.Fatalf("%d sends and %d tracks (unexpected "+
					"call: %v), want %d and %d", sends, tracks,
					unexpected, tc.wantSends, tc.wantT)
			}
		})
	}
}
