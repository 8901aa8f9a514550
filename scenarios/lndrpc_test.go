package scenarios

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"google.golang.org/grpc"
)

// dialLnd opens a plain gRPC connection to n, for what the adapter does not
// offer (closed channels, the stream of every payment); closed when the
// test ends.
func dialLnd(t *testing.T, n *regtest.Node) *grpc.ClientConn {
	t.Helper()
	conn, err := lndclient.NewBasicConn(n.RPCAddr(), n.TLSCertPath,
		filepath.Dir(n.MacaroonPath), "regtest")
	must(t, err)
	t.Cleanup(func() { conn.Close() })

	return conn
}

// checkNoChannelClosed fails the test if any node has a channel closed or
// closing, or fewer active channels than want says.
func checkNoChannelClosed(t *testing.T, net *regtest.Network,
	want map[string]int) {

	t.Helper()
	ctx := testCtx(t, regtest.DefaultWait)
	for _, n := range net.Nodes() {
		ln := lnrpc.NewLightningClient(dialLnd(t, n))
		closed, err := ln.ClosedChannels(ctx, &lnrpc.ClosedChannelsRequest{})
		must(t, err)
		pending, err := ln.PendingChannels(ctx, &lnrpc.PendingChannelsRequest{})
		must(t, err)
		if len(closed.Channels) > 0 || len(pending.WaitingCloseChannels) > 0 ||
			len(pending.PendingForceClosingChannels) > 0 {

			t.Fatalf("%s: closed %v, waiting close %v, force closing %v",
				n.Name, closed.Channels, pending.WaitingCloseChannels,
				pending.PendingForceClosingChannels)
		}
		active, err := ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{
			ActiveOnly: true})
		must(t, err)
		if len(active.Channels) != want[n.Name] {
			t.Fatalf("%s has %d active channels, want %d", n.Name,
				len(active.Channels), want[n.Name])
		}
	}
}

// firstSight starts following every payment of n's lnd and calls seen, on
// the stream's goroutine, the first time a payment for hash shows up; done
// is closed once that payment has ended, with its last update.
func firstSight(t *testing.T, n *regtest.Node, hash lntypes.Hash,
	seen func()) (done <-chan *lnrpc.Payment) {

	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := routerrpc.NewRouterClient(dialLnd(t, n)).TrackPayments(
		ctx, &routerrpc.TrackPaymentsRequest{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	out := make(chan *lnrpc.Payment, 1)
	ended := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-ended
	})

	// Reads the stream until the payment ends or the test does.
	go func() {
		defer close(ended)
		first := true
		for {
			p, err := stream.Recv()
			if err != nil {
				close(out)
				return
			}
			if p.PaymentHash != hash.String() {
				continue
			}
			if first {
				first = false
				seen()
			}
			if p.Status == lnrpc.Payment_SUCCEEDED ||
				p.Status == lnrpc.Payment_FAILED {

				out <- p
				return
			}
		}
	}()

	return out
}

// forgetFailures resets what n's lnd learned from failed payments (mission
// control), so a payment's first attempt really tries the route and fails
// where the liquidity is missing, not at once on lnd's memory of an
// earlier failure.
func forgetFailures(t *testing.T, n *regtest.Node) {
	t.Helper()
	_, err := routerrpc.NewRouterClient(dialLnd(t, n)).ResetMissionControl(
		testCtx(t, time.Minute), &routerrpc.ResetMissionControlRequest{})
	must(t, err)
}
