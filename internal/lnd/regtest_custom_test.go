package lnd_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightningnetwork/lnd/routing/route"
)

// lsps0Type is the BOLT8 message type of LSPS0 (bLIP-50).
const lsps0Type = 37913

// testCustomMessages: dave (a wallet) sends carol (its LSP) LSPS0
// messages; carol's subscription has them with dave's key, and only of
// the type it asked for. carol's lnd restarts: the subscriptions opened
// before come back, dave is reported online again and his next messages
// arrive. A peer that is not connected is ErrPeerNotConnected.
func testCustomMessages(t *testing.T, net *regtest.Network) {
	ctx := testContext(t)
	carol, dave := net.Carol, net.Dave

	msgs, err := carol.Client.SubscribeCustomMessages(ctx, lsps0Type)
	must(t, err)
	defer msgs.Close()
	peers, err := carol.Client.SubscribePeerEvents(ctx)
	must(t, err)
	defer peers.Close()
	waitOnline(t, peers, dave.PubKey)

	stranger := route.Vertex{0x02, 0xde, 0xad}
	err = dave.Client.SendCustomMessage(ctx, stranger, lsps0Type, []byte("{}"))
	wantErr(t, err, lnd.ErrPeerNotConnected)

	sendUntilReceived(t, dave, carol, msgs, "before")

	// Another custom type is not delivered: the 37913 after it is the
	// next message (sendUntilReceived fails on any other type).
	must(t, dave.Client.SendCustomMessage(ctx, carol.PubKey, 40001,
		[]byte("not lsps0")))
	sendUntilReceived(t, dave, carol, msgs, "typed")

	restart(t, carol)
	waitOnline(t, peers, dave.PubKey)
	sendUntilReceived(t, dave, carol, msgs, "after restart")
	if msgs.Err() != nil || peers.Err() != nil {
		t.Fatalf("subscriptions ended: %v, %v", msgs.Err(), peers.Err())
	}
}

// sendUntilReceived has from send to an LSPS0 message tagged tag, again
// every 200ms, until to's subscription delivers one: lnd registers a
// stream only after the call that opened it returned, and a restarted
// lnd's peers reconnect in their own time. Messages of earlier tags still
// arriving are skipped.
func sendUntilReceived(t *testing.T, from, to *regtest.Node,
	sub *lnd.Subscription[lnd.CustomMessage], tag string) {

	t.Helper()
	ctx := testContext(t)
	start := time.Now()
	deadline := time.NewTimer(stepTimeout)
	defer deadline.Stop()
	for i := 0; ; i++ {
		data := fmt.Sprintf(`{"jsonrpc":"2.0","id":"%s-%d","method":"lsps0.list_protocols","params":{}}`,
			tag, i)
		err := from.Client.SendCustomMessage(ctx, to.PubKey, lsps0Type,
			[]byte(data))
		if err != nil && !errors.Is(err, lnd.ErrPeerNotConnected) &&
			!errors.Is(err, lnd.ErrUnavailable) {

			t.Fatalf("%s sends: %v", from.Name, err)
		}
		resend := time.NewTimer(200 * time.Millisecond)
	wait:
		for {
			select {
			case m, ok := <-sub.Updates():
				if !ok {
					resend.Stop()
					t.Fatalf("subscription ended: %v", sub.Err())
				}
				if m.Type != lsps0Type || m.Peer != from.PubKey {
					t.Fatalf("message of type %d from %v, want "+
						"%d from %s", m.Type, m.Peer,
						lsps0Type, from.Name)
				}
				if strings.Contains(string(m.Data), `"`+tag+`-`) {
					resend.Stop()
					t.Logf("%s: received after %d sends, %v", tag,
						i+1, time.Since(start).Round(time.Millisecond))
					return
				}
			case <-resend.C:
				break wait
			case <-deadline.C:
				t.Fatalf("%s: nothing received in %v (%d sends, "+
					"last error %v)", tag, stepTimeout, i+1, err)
			}
		}
	}
}

// waitOnline reads peer events until peer is online.
func waitOnline(t *testing.T, sub *lnd.Subscription[lnd.PeerEvent],
	peer route.Vertex) {

	t.Helper()
	for {
		if ev := next(t, sub); ev.Peer == peer && ev.Online {
			return
		}
	}
}
