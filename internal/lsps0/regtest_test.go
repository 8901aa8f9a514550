package lsps0_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
)

// TestRegtestLSPS0: carol's lnd carries LSPS0 both ways. carol serves a
// Server with Run over NewLndTransport; dave, her wallet, sends
// lsps0.list_protocols in a 37913 message and gets the answer in one.
func TestRegtestLSPS0(t *testing.T) {
	net := regtest.StartT(t, regtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	carol, dave := net.Carol, net.Dave

	srv := lsps0.NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv.Handle(5, "lsps5.list_webhooks", func(context.Context, onionmsg.NodeKey, json.RawMessage) (any, error) {
		return nil, nil
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx, lsps0.NewLndTransport(carol.Client)) }()

	answers, err := dave.Client.SubscribeCustomMessages(ctx, lsps0.MessageType)
	if err != nil {
		t.Fatal(err)
	}
	defer answers.Close()

	// carol's subscription opens when Run starts, and lnd registers it
	// a moment after: dave asks again every 200ms until answered.
	start := time.Now()
	var got lnd.CustomMessage
	for i := 0; got.Data == nil; i++ {
		if time.Since(start) > time.Minute {
			t.Fatal("no answer in a minute")
		}
		req := fmt.Sprintf(`{"jsonrpc":"2.0","id":"request:id:xyz%d","method":"lsps0.list_protocols","params":{}}`, i)
		err := dave.Client.SendCustomMessage(ctx, carol.PubKey, lsps0.MessageType, []byte(req))
		if err != nil && !errors.Is(err, lnd.ErrPeerNotConnected) {
			t.Fatal(err)
		}
		select {
		case got = <-answers.Updates():
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("answered over lnd in %v", time.Since(start).Round(time.Millisecond))
	if got.Peer != carol.PubKey || got.Type != lsps0.MessageType {
		t.Fatalf("answer of type %d from %v", got.Type, got.Peer)
	}
	var resp, want map[string]any
	if err := json.Unmarshal(got.Data, &resp); err != nil {
		t.Fatalf("%v: %s", err, got.Data)
	}
	_ = json.Unmarshal([]byte(`{"jsonrpc":"2.0","result":{"protocols":[5]}}`), &want)
	want["id"] = resp["id"]
	if id, _ := resp["id"].(string); !strings.HasPrefix(id, "request:id:xyz") || !reflect.DeepEqual(resp, want) {
		t.Fatalf("answer %s", got.Data)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
}
