package lnd

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
)

var (
	peerA = "02" + strings.Repeat("ab", 32)
	peerB = "03" + strings.Repeat("cd", 32)
)

func TestCloseTypeFromRPC(t *testing.T) {
	want := map[lnrpc.ChannelCloseSummary_ClosureType]CloseType{
		lnrpc.ChannelCloseSummary_COOPERATIVE_CLOSE:  CloseCooperative,
		lnrpc.ChannelCloseSummary_LOCAL_FORCE_CLOSE:  CloseLocalForce,
		lnrpc.ChannelCloseSummary_REMOTE_FORCE_CLOSE: CloseRemoteForce,
		lnrpc.ChannelCloseSummary_BREACH_CLOSE:       CloseBreach,
		lnrpc.ChannelCloseSummary_FUNDING_CANCELED:   CloseFundingCanceled,
		lnrpc.ChannelCloseSummary_ABANDONED:          CloseAbandoned,
	}
	// Every type lnd v0.21 defines is mapped, to a distinct one.
	if len(lnrpc.ChannelCloseSummary_ClosureType_name) != len(want) {
		t.Fatalf("lnd has %d closure types, the test knows %d",
			len(lnrpc.ChannelCloseSummary_ClosureType_name), len(want))
	}
	seen := map[CloseType]bool{}
	for rpc, w := range want {
		got := closeTypeFromRPC(rpc)
		if got != w || seen[got] || got.String() != rpc.String() {
			t.Fatalf("%v -> %v, want %v (once)", rpc, got, w)
		}
		seen[got] = true
	}
	if got := closeTypeFromRPC(99); got != CloseUnknown || got.Forced() {
		t.Fatalf("an unknown type -> %v", got)
	}
	for ct, forced := range map[CloseType]bool{
		CloseCooperative: false, CloseLocalForce: true,
		CloseRemoteForce: true, CloseBreach: true,
		CloseFundingCanceled: false, CloseAbandoned: false,
	} {
		if ct.Forced() != forced {
			t.Errorf("%v.Forced() = %v", ct, ct.Forced())
		}
	}
}

func TestClosedChannelFromRPC(t *testing.T) {
	cc, err := closedChannelFromRPC(&lnrpc.ChannelCloseSummary{
		ChannelPoint: "aa:1", ChanId: 7, RemotePubkey: peerA,
		Capacity: 1000, SettledBalance: 400, CloseHeight: 300,
		ClosingTxHash: "bb",
		CloseType:     lnrpc.ChannelCloseSummary_REMOTE_FORCE_CLOSE,
	})
	if err != nil || cc.ChannelPoint != "aa:1" || cc.ChanID != 7 ||
		cc.RemotePubKey.String() != peerA || cc.Capacity != 1000 ||
		cc.SettledBalance != 400 || cc.CloseHeight != 300 ||
		cc.ClosingTxHash != "bb" || cc.CloseType != CloseRemoteForce {

		t.Fatalf("%+v, %v", cc, err)
	}
	if _, err := closedChannelFromRPC(&lnrpc.ChannelCloseSummary{
		RemotePubkey: "xx"}); err == nil {
		t.Fatal("bad pubkey accepted")
	}
}

func TestPendingChannelsFromRPC(t *testing.T) {
	ch := func(point, peer string) *lnrpc.PendingChannelsResponse_PendingChannel {
		return &lnrpc.PendingChannelsResponse_PendingChannel{
			ChannelPoint: point, RemoteNodePub: peer, Capacity: 1000,
			LocalBalance: 600,
		}
	}
	pc, err := pendingChannelsFromRPC(&lnrpc.PendingChannelsResponse{
		PendingOpenChannels: []*lnrpc.PendingChannelsResponse_PendingOpenChannel{
			{Channel: ch("o:0", peerA)},
		},
		WaitingCloseChannels: []*lnrpc.PendingChannelsResponse_WaitingCloseChannel{
			{Channel: ch("w:0", peerB), ClosingTxid: "wt", LimboBalance: 590},
		},
		PendingForceClosingChannels: []*lnrpc.PendingChannelsResponse_ForceClosedChannel{
			{Channel: ch("f:0", peerA), ClosingTxid: "ft", LimboBalance: 580,
				PendingHtlcs: []*lnrpc.PendingHTLC{{}, {}}},
		},
	})
	if err != nil || len(pc.Opening) != 1 || len(pc.WaitingClose) != 1 ||
		len(pc.ForceClosing) != 1 {
		t.Fatalf("%+v, %v", pc, err)
	}
	o, w, f := pc.Opening[0], pc.WaitingClose[0], pc.ForceClosing[0]
	if o.ChannelPoint != "o:0" || o.RemotePubKey.String() != peerA ||
		o.Capacity != 1000 || o.LocalBalance != 600 || o.ClosingTxID != "" ||
		w.ChannelPoint != "w:0" || w.ClosingTxID != "wt" || w.LimboBalance != 590 ||
		f.ClosingTxID != "ft" || f.LimboBalance != 580 || f.PendingHTLCs != 2 {

		t.Fatalf("%+v", pc)
	}
	if _, err := pendingChannelsFromRPC(&lnrpc.PendingChannelsResponse{
		WaitingCloseChannels: []*lnrpc.PendingChannelsResponse_WaitingCloseChannel{{}},
	}); err == nil {
		t.Fatal("a channel-less entry accepted")
	}
	if _, err := pendingChannelsFromRPC(&lnrpc.PendingChannelsResponse{
		PendingForceClosingChannels: []*lnrpc.PendingChannelsResponse_ForceClosedChannel{
			{Channel: ch("f:0", "xx")},
		},
	}); err == nil {
		t.Fatal("bad pubkey accepted")
	}
}

func TestChannelHTLCs(t *testing.T) {
	pre := lntypes.Preimage{5}
	hash := pre.Hash()
	ch, err := channelFromRPC(&lnrpc.Channel{
		ChanId: 9, RemotePubkey: peerA,
		PendingHtlcs: []*lnrpc.HTLC{
			{Incoming: true, Amount: 1500, HashLock: hash[:], ExpirationHeight: 700},
			{Incoming: false, Amount: 20},
		},
	})
	if err != nil || len(ch.HTLCs) != 2 {
		t.Fatalf("%+v, %v", ch, err)
	}
	in, out := ch.HTLCs[0], ch.HTLCs[1]
	if !in.Incoming || in.Hash != hash || in.AmountMsat != 1_500_000 ||
		in.ExpiryHeight != 700 || out.Incoming || out.Hash != (lntypes.Hash{}) ||
		out.AmountMsat != 20_000 {

		t.Fatalf("HTLCs %+v", ch.HTLCs)
	}
}

// listAll follows the offsets page by page until an empty page, or one
// that does not move on, and stops at the first error.
func TestListAll(t *testing.T) {
	// pages of 2 from a list of 5, offsets as lnd's (the last index
	// returned; 0 for an empty page).
	items := []int{1, 2, 3, 4, 5}
	var asked []uint64
	fetch := func(offset uint64) ([]int, uint64, error) {
		asked = append(asked, offset)
		end := min(int(offset)+2, len(items))
		if int(offset) >= len(items) {
			return nil, 0, nil
		}
		return items[offset:end], uint64(end), nil
	}
	got, err := listAll(fetch)
	if err != nil || !slices.Equal(got, items) ||
		!slices.Equal(asked, []uint64{0, 2, 4, 5}) {
		t.Fatalf("%v, %v after asking %v", got, err, asked)
	}

	stuck := 0
	got, err = listAll(func(offset uint64) ([]int, uint64, error) {
		stuck++
		return []int{1}, offset, nil
	})
	if err != nil || len(got) != 1 || stuck != 1 {
		t.Fatalf("an offset that does not move: %v, %v after %d calls",
			got, err, stuck)
	}

	boom := errors.New("boom")
	_, err = listAll(func(offset uint64) ([]int, uint64, error) {
		if offset > 0 {
			return nil, 0, boom
		}
		return []int{1}, 1, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
}
