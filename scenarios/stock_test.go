package scenarios

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	receiverclient "github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
)

// TestStockWallet is dave's wallet as a wallet of the field runs it, with
// nothing but lnd's stock RPCs: LSPS0 requests sent with SendCustomMessage
// and answers read from SubscribeCustomMessages, webhooks checked by a
// validator written from bLIP-55, a release signed with lnrpc SignMessage.
// Every call carol answers is what bLIP-50, bLIP-55 and asynclsp's own
// methods say, bad requests get their errors, and a forged, a wrong-key
// and a replayed release change nothing while the genuine one settles.
func TestStockWallet(t *testing.T) {
	c := newCast(t, regtest.Options{}, Options{Webhooks: true, Stock: true})
	ctx := testCtx(t, 4*time.Minute)
	w := c.Stock
	before, err := c.Balances(ctx)
	must(t, err)

	t.Run("LSPS0", func(t *testing.T) {
		var protos struct {
			Protocols []int `json:"protocols"`
		}
		must(t, w.Call(ctx, "lsps0.list_protocols", struct{}{}, &protos))
		if !slices.Contains(protos.Protocols, 5) || slices.Contains(protos.Protocols, 0) {
			t.Fatalf("list_protocols: %v, want 5 and never 0", protos.Protocols)
		}
		// 50:113-127: what is not one JSON-RPC request is a parse
		// error, answered with id null.
		for _, raw := range []string{`not json`, `{"jsonrpc":"2.0","method":"lsps0.list_protocols","params":{}}`, `[]`} {
			r, err := w.SendRaw(ctx, "", []byte(raw))
			must(t, err)
			if r.ID != nil || r.Error == nil || r.Error.Code != -32700 {
				t.Errorf("%s: answered %+v, want -32700 with id null", raw, r)
			}
		}
		wantCode(t, "unknown method", w.Call(ctx, "lsps0.no_such_method", struct{}{}, nil), -32601)
		err := w.Call(ctx, "lsps5.list_webhooks", map[string]any{"colour": "blue"}, nil)
		wantCode(t, "unknown param", err, -32602)
		var rpc *RPCError
		if errors.As(err, &rpc) && !strings.Contains(string(rpc.Data), `"unrecognized":["colour"]`) {
			t.Errorf("unknown param: data %s, want unrecognized [colour]", rpc.Data)
		}
	})

	t.Run("LSPS5", func(t *testing.T) {
		// The webhook set when dave's wallet assembled got
		// lsps5.webhook_registered, before anything else.
		first, _, err := c.Hooks.Wait(ctx, "lsps5.webhook_registered", 0)
		must(t, err)
		if got := c.Hooks.Received(); got[0].Method != first.Method {
			t.Fatalf("first webhook %+v, want webhook_registered", got[0])
		}
		var list struct {
			AppNames    []string `json:"app_names"`
			MaxWebhooks int      `json:"max_webhooks"`
		}
		must(t, w.Call(ctx, "lsps5.list_webhooks", struct{}{}, &list))
		if !slices.Equal(list.AppNames, []string{StockApp}) || list.MaxWebhooks != 10 {
			t.Fatalf("list_webhooks: %+v", list)
		}
		var set struct {
			NumWebhooks int  `json:"num_webhooks"`
			MaxWebhooks int  `json:"max_webhooks"`
			NoChange    bool `json:"no_change"`
		}
		must(t, w.Call(ctx, "lsps5.set_webhook",
			map[string]string{"app_name": StockApp, "webhook": c.Hooks.URL}, &set))
		if !set.NoChange || set.NumWebhooks != 1 || set.MaxWebhooks != 10 {
			t.Fatalf("set_webhook again: %+v, want no_change", set)
		}
		for name, tc := range map[string]struct {
			params map[string]string
			code   int
		}{
			"too long":         {map[string]string{"app_name": strings.Repeat("a", 65), "webhook": c.Hooks.URL}, 500},
			"not a URL":        {map[string]string{"app_name": "x", "webhook": "not a url"}, 501},
			"not https":        {map[string]string{"app_name": "x", "webhook": "http://wallet.example/hook"}, 502},
			"missing app_name": {map[string]string{"webhook": c.Hooks.URL}, -32602},
		} {
			wantCode(t, "set_webhook "+name, w.Call(ctx, "lsps5.set_webhook", tc.params, nil), tc.code)
		}
		wantCode(t, "remove unknown app", w.Call(ctx, "lsps5.remove_webhook",
			map[string]string{"app_name": "no such app"}, nil), 1010)

		// A second app, then removed: the list is back to one.
		must(t, w.Call(ctx, "lsps5.set_webhook",
			map[string]string{"app_name": "second", "webhook": c.Hooks.URL + "?app=2"}, &set))
		if set.NumWebhooks != 2 || set.NoChange {
			t.Fatalf("second webhook: %+v", set)
		}
		must(t, w.Call(ctx, "lsps5.remove_webhook", map[string]string{"app_name": "second"}, nil))
		must(t, w.Call(ctx, "lsps5.list_webhooks", struct{}{}, &list))
		if !slices.Equal(list.AppNames, []string{StockApp}) {
			t.Fatalf("after remove_webhook: %+v", list.AppNames)
		}
	})

	t.Run("Release", func(t *testing.T) {
		const amount = lnwire.MilliSatoshi(20_000_000)
		hooksFrom := len(c.Hooks.Received())
		must(t, c.Net.Dave.Stop(ctx))
		p, err := c.Create(ctx, amount, "")
		must(t, err)
		hash, err := Hash(p)
		must(t, err)
		pay, err := c.AlicePays(ctx, p, 0)
		must(t, err)
		t.Cleanup(pay.Close)
		_, err = c.WaitState(ctx, p.ID, senderclient.StateHeld)
		must(t, err)
		hook, _, err := c.Hooks.Wait(ctx, "lsps5.payment_incoming", hooksFrom)
		must(t, err)
		if string(hook.Params) != "{}" {
			t.Fatalf("payment_incoming params %s, want {}", hook.Params)
		}

		must(t, c.Net.Dave.Start(ctx))
		must(t, c.RedialStock(ctx))
		w := c.Stock
		items, err := w.Mailbox(ctx)
		must(t, err)
		i := slices.IndexFunc(items, func(it receiverclient.Item) bool {
			return lntypes.Hash(it.PaymentHash) == hash
		})
		if i < 0 {
			t.Fatalf("dave's mailbox over LSPS0 has no item for %s: %+v", hash, items)
		}
		text := items[i].Sign
		if !strings.HasPrefix(text, "asynclsp release: DO NOT SIGN THIS MESSAGE MANUALLY: ") {
			t.Fatalf("release text %q", text)
		}
		sig, err := w.SignMessage(ctx, []byte(text))
		must(t, err)

		// Refused, and nothing changes: alice's signature (a node
		// key, but not the invoice's destination), a stranger's, dave's
		// signature over another text, and a signature mangled.
		aliceSig, err := lnrpc.NewLightningClient(dialLnd(t, c.Net.Alice)).SignMessage(ctx,
			&lnrpc.SignMessageRequest{Msg: []byte(text)})
		must(t, err)
		stranger, err := btcec.NewPrivateKey()
		must(t, err)
		otherText, err := w.SignMessage(ctx, []byte(text+"0"))
		must(t, err)
		mangled := []byte(sig)
		mangled[10] = map[bool]byte{true: 'y', false: 'b'}[mangled[10] == 'b']
		for name, s := range map[string]string{
			"wrong key (alice's lnd)": aliceSig.Signature,
			"wrong key (a stranger)":  signSpec(stranger, text),
			"forged (another text)":   otherText,
			"mangled":                 string(mangled),
		} {
			err := w.Call(ctx, "asynclsp.release_ln",
				map[string]string{"message": text, "signature": s}, nil)
			wantCode(t, name, err, -31400)
		}
		if p, err := c.Wallet.Payment(ctx, p.ID); err != nil || p.State != senderclient.StateHeld {
			t.Fatalf("after the refused releases: %+v, %v", p, err)
		}

		// The genuine release settles the payment.
		it, err := w.PostRelease(ctx, SignedRelease{Text: text, Signature: sig})
		must(t, err)
		done, _, err := pay.Wait(ctx)
		must(t, err)
		if done.Status != lnd.PaymentSucceeded || done.Preimage.Hash() != hash {
			t.Fatalf("alice's payment: %+v", done)
		}
		if it, err = w.WaitOutcome(ctx, it); err != nil || it.State != "settled" {
			t.Fatalf("outcome: %+v, %v", it, err)
		}

		// Replayed after it settled: refused, and paid once.
		err = w.Call(ctx, "asynclsp.release_ln",
			map[string]string{"message": text, "signature": sig}, nil)
		wantCode(t, "replayed", err, -31409)
		checkLedgers(t, c, Run{Sent: Expect(c.Sent(), FateSettled), Before: before})
	})
}

// wantCode fails unless err is a JSON-RPC error with code.
func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var rpc *RPCError
	if !errors.As(err, &rpc) || rpc.Code != code {
		t.Errorf("%s: %v, want JSON-RPC error %d", what, err, code)
	}
}
