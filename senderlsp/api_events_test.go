package senderlsp

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/senderlsp/client"
)

// history makes payments of two wallets end every way: A's first settles,
// B's is held, A's second is canceled.
func (a *apiHarness) history(walletA, walletB *client.Client) {
	a.t.Helper()
	a.settle(a.createVia(walletA, 1_000_000))
	a.pay(a.hold(a.createVia(walletB, 1_000_000)))
	p := a.createVia(walletA, 1_000_000)
	a.pay(a.hold(p))
	if _, err := walletA.Cancel(context.Background(), p.ID); err != nil {
		a.t.Fatal(err)
	}
	a.waitResolved(a.hold(p).ID)
}

// Resuming after any sequence number gives exactly the later events, in
// order; Last-Event-ID wins over after; a position past the end is refused.
func TestAPIEventsResumeFromSeq(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	tokA := a.token("wallet-a", holdstore.RoleWallet)
	admin := a.token("ops", holdstore.RoleAdmin)
	a.history(a.client(tokA), a.wallet("wallet-b"))
	all := a.storeEvents(0, "")
	last := all[len(all)-1].Seq
	if len(all) < 10 || last != uint64(len(all)) {
		t.Fatalf("history: %d events, last seq %d", len(all), last)
	}
	// A marker after the history ends each read.
	marker := func() holdstore.ID {
		return a.hold(a.createVia(a.client(tokA), 1_000_000)).ID
	}

	read := func(token, owner string, after uint64, header ...string) {
		t.Helper()
		query := "?after=" + strconv.FormatUint(after, 10)
		if len(header) > 0 {
			query = "?after=0"
		}
		msgs, resp := a.rawStream(ctx, query, token, header...)
		if msgs == nil {
			t.Fatalf("after %d: status %d", after, resp.StatusCode)
		}
		want := a.storeEvents(after, owner)
		end := marker()
		for i := 0; ; i++ {
			ev, m := nextEvent(t, msgs)
			if ev.HoldID == end {
				if i != len(want) {
					t.Fatalf("after %d: %d events before the marker, want %d", after, i, len(want))
				}
				return
			}
			if i >= len(want) || !sameEvent(ev, want[i]) || m.id != strconv.FormatUint(ev.Seq, 10) {
				t.Fatalf("after %d: event %d is %+v (id %s)", after, i, ev, m.id)
			}
		}
	}
	for _, after := range []uint64{0, 1, 4, last - 1, last} {
		read(admin, "", after)
		read(tokA, "wallet-a", after)
	}
	// Last-Event-ID, as a reconnecting EventSource sends it, wins.
	read(admin, "", 5, "Last-Event-ID", "5")

	seq, _ := a.store.LastSeq(ctx)
	for _, c := range []struct{ query, header string }{
		{"?after=" + strconv.FormatUint(seq+1, 10), ""},
		{"?after=-1", ""},
		{"?after=x", ""},
		{"?from=3", ""},
		{"", "9999"},
		{"", "abc"},
	} {
		var h []string
		if c.header != "" {
			h = []string{"Last-Event-ID", c.header}
		}
		msgs, resp := a.rawStream(ctx, c.query, admin, h...)
		if msgs != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q %q: status %d", c.query, c.header, resp.StatusCode)
		}
	}
}

func sameEvent(a, b holdstore.Event) bool {
	return a.Seq == b.Seq && a.HoldID == b.HoldID && a.From == b.From &&
		a.To == b.To && a.Reason == b.Reason && a.Final == b.Final && a.At.Equal(b.At)
}

// Across disconnects, the client resumes where it was: every event once,
// in order, and one final event per payment.
func TestAPIEventsAcrossDisconnects(t *testing.T) {
	a := newAPIHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := a.client(a.token("ops", holdstore.RoleAdmin))
	walletA, walletB := a.wallet("wallet-a"), a.wallet("wallet-b")
	streams := map[string]*puller{
		"":         pull(t, admin.Events(ctx, 0)),
		"wallet-a": pull(t, walletA.Events(ctx, 0)),
	}
	got := map[string][]client.Event{}
	// readUpTo reads each stream until it has every stored event it may
	// see up to seq.
	readUpTo := func(seq uint64) {
		t.Helper()
		for owner, s := range streams {
			want := a.storeEvents(0, owner)
			for len(got[owner]) < len(want) && want[len(got[owner])].Seq <= seq {
				got[owner] = append(got[owner], s.event())
			}
		}
	}
	lastSeq := func() uint64 {
		seq, _ := a.store.LastSeq(ctx)
		return seq
	}

	for round := range 3 {
		a.history(walletA, walletB)
		readUpTo(lastSeq() - 3)
		// Cut every connection mid-stream, then make more history, which
		// only a new connection can carry.
		a.srv.CloseClientConnections()
		a.history(walletA, walletB)
		readUpTo(lastSeq())
		a.mu.Lock()
		resumes := len(a.resumes)
		a.mu.Unlock()
		if resumes < 2*(round+2) {
			t.Fatalf("round %d: %d stream connections", round, resumes)
		}
	}

	for owner := range streams {
		want := a.storeEvents(0, owner)
		if len(got[owner]) != len(want) {
			t.Fatalf("%q: %d events, want %d", owner, len(got[owner]), len(want))
		}
		finals := map[string]int{}
		for i, ev := range got[owner] {
			w := want[i]
			if ev.Seq != w.Seq || ev.PaymentID != w.HoldID.String() ||
				string(ev.State) != string(w.To) || ev.Final != w.Final {
				t.Fatalf("%q: event %d is %+v, want %+v", owner, i, ev, w)
			}
			if ev.Final {
				finals[ev.PaymentID]++
			}
		}
		for id, n := range finals {
			if n != 1 {
				t.Fatalf("%q: payment %s has %d final events", owner, id, n)
			}
		}
		// 2 of every 3 payments of history reach a final state, A's both.
		if owner == "wallet-a" && len(finals) != 12 {
			t.Fatalf("%q: %d payments ended", owner, len(finals))
		}
	}
	// Each reconnect resumed from a position the client had seen.
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.resumes {
		if _, err := strconv.ParseUint(r, 10, 64); err != nil {
			t.Fatalf("Last-Event-ID %q", r)
		}
	}
}

// An idle stream gets heartbeats, and its position moves past events the
// wallet may not see; it ends when the API closes, and Close waits for it.
func TestAPIEventsHeartbeatAndClose(t *testing.T) {
	a := newAPIHarness(t)
	ctx := context.Background()
	tokA := a.token("wallet-a", holdstore.RoleWallet)
	b := a.wallet("wallet-b")
	a.createVia(b, 1_000_000)

	msgs, _ := a.rawStream(ctx, "", tokA)
	first := <-msgs
	if first.id != "1" || first.data != "" {
		t.Fatalf("first message %+v: want the position, 1", first)
	}
	// B's payment moves A's position on, with the next heartbeat.
	a.pay(a.hold(a.createVia(b, 1_000_000)))
	seq, _ := a.store.LastSeq(ctx)
	heartbeat := func() sseMsg {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			a.advance(a.api.cfg.Heartbeat)
			select {
			case m := <-msgs:
				if m.comment == "heartbeat" {
					return m
				}
				t.Fatalf("message %+v, want a heartbeat", m)
			case <-time.After(20 * time.Millisecond):
			}
		}
		t.Fatal("no heartbeat")
		return sseMsg{}
	}
	if m := heartbeat(); m.id != fmt.Sprint(seq) {
		t.Fatalf("heartbeat %+v: want position %d", m, seq)
	}
	if m := heartbeat(); m.hasID {
		t.Fatalf("heartbeat %+v repeats the position", m)
	}

	// The client going away ends its stream.
	cctx, cancel := context.WithCancel(ctx)
	a.rawStream(cctx, "", tokA)
	testkit.Eventually(t, 10*time.Second, "two streams", func() bool {
		return a.api.active.Load() == 2
	})
	cancel()
	testkit.Eventually(t, 10*time.Second, "one stream", func() bool {
		return a.api.active.Load() == 1
	})

	a.api.Close()
	if a.api.active.Load() != 0 {
		t.Fatal("Close returned with a stream open")
	}
	for range msgs {
	}
	status, out, _ := a.call("GET", "/v1/payments", tokA, "")
	if status != http.StatusServiceUnavailable || errCode(out) != "unavailable" {
		t.Fatalf("after Close: %d %v", status, out)
	}
}
