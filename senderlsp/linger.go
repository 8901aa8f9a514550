package senderlsp

import (
	"context"
	"errors"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/routing/route"
)

// maxLingerLookups bounds the store lookups of one linger check: the
// incoming HTLCs of no tracked hold are other payments forwarded through
// the node, a handful at any moment.
const maxLingerLookups = 1000

// lingering is an incoming HTLC of a payment asynclsp ended (its hold
// invoice canceled or settled, and lnd said so), still on a channel.
type lingering struct {
	hold   holdstore.ID
	state  holdstore.State
	chanID uint64
	expiry uint32
	// linkDown: the channel is inactive though its peer is connected
	// (its link failed); otherwise it is active and the HTLC stayed.
	linkDown bool
}

// lingerLoop checks every LingerInterval, on the injected clock, that lnd
// carried out the cancels and settles it confirmed.
func (m *Manager) lingerLoop(ctx context.Context) {
	for sleep(ctx, m.clock, m.cfg.LingerInterval) {
		if err := m.checkLingering(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("checking lnd's channels for HTLCs of ended payments failed",
				"err", err)
		}
	}
}

// checkLingering looks for incoming HTLCs of payments asynclsp ended that
// lnd still has on a channel, LingerGrace after the end. lnd confirmed the
// cancel (or settle) of their hold invoice, yet did not fail back (or
// fulfill) the HTLC: its link may have failed for good (the soak met one
// that failed at every start, replaying a settle of an HTLC it no longer
// had), or a restart lost the invoice's link to it. Nothing asynclsp can
// call fixes that, and the HTLC's expiry, when the sender's node
// force-closes the channel, is hours away at worst (the hold's deadline is
// SafetyMarginBlocks + MinOutboundCltv blocks before it): each one is
// logged at ERROR once and counted (asynclsp_sender_lingering_htlcs), for
// the operator to act while there is time.
//
// An HTLC on a channel whose peer is away is not reported: the sender's
// node is offline (a mobile wallet), and its HTLC is failed back or
// fulfilled when it returns, as lnd always does. On a channel that is
// inactive with its peer connected, the link has failed.
//
// The cost is one ListChannels, a store lookup per incoming HTLC of no
// tracked hold (forwarded payments, and these), and a ListPeers when one
// of those is on an inactive channel.
func (m *Manager) checkLingering(ctx context.Context) error {
	chans, err := m.lnd.ListChannels(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	ours := make(map[lntypes.Hash]bool, len(m.holds))
	for _, t := range m.holds {
		ours[t.fixed.hash] = true
	}
	m.mu.Unlock()

	var connected map[route.Vertex]bool // read at the first inactive channel
	found := map[lntypes.Hash]lingering{}
	lookups := 0
	for _, c := range chans {
		for _, h := range c.HTLCs {
			if !h.Incoming || ours[h.Hash] {
				continue
			}
			if _, seen := found[h.Hash]; seen || lookups == maxLingerLookups {
				continue
			}
			lookups++
			l, ok, err := m.lingeringHTLC(ctx, c, h)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if !c.Active {
				if connected == nil {
					if connected, err = m.connectedPeers(ctx); err != nil {
						return err
					}
				}
				if !connected[c.RemotePubKey] {
					continue // the peer is away
				}
				l.linkDown = true
			}
			found[h.Hash] = l
		}
	}
	m.reportLingering(found)
	return nil
}

// connectedPeers returns the peers connected to lnd now.
func (m *Manager) connectedPeers(ctx context.Context) (map[route.Vertex]bool, error) {
	peers, err := m.lnd.ConnectedPeers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[route.Vertex]bool, len(peers))
	for _, p := range peers {
		out[p] = true
	}
	return out, nil
}

// lingeringHTLC says whether h, on channel c, belongs to a payment asynclsp
// ended more than LingerGrace ago.
func (m *Manager) lingeringHTLC(ctx context.Context, c lnd.Channel,
	h lnd.ChannelHTLC) (lingering, bool, error) {

	hold, err := m.store.GetByHash(ctx, h.Hash)
	switch {
	case errors.Is(err, holdstore.ErrNotFound):
		return lingering{}, false, nil // a payment forwarded, not ours
	case err != nil:
		return lingering{}, false, err
	}
	if !hold.Resolved || !hold.State.Final() ||
		m.clock.Now().Sub(hold.UpdatedAt) < m.cfg.LingerGrace {
		return lingering{}, false, nil
	}
	return lingering{hold: hold.ID, state: hold.State, chanID: c.ChanID,
		expiry: h.ExpiryHeight}, true, nil
}

// reportLingering logs each lingering HTLC once, when first found, and
// when it is gone; the gauge counts them.
func (m *Manager) reportLingering(found map[lntypes.Hash]lingering) {
	height := m.height.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	for hash, l := range found {
		if _, known := m.lingering[hash]; known {
			continue
		}
		m.log.Error("lnd still has the incoming HTLC of a payment it "+
			"confirmed ended: the sender's node will force-close the "+
			"channel at the HTLC's expiry unless lnd removes it (see "+
			"README, Operations: lingering HTLCs)", "hold", l.hold.String(),
			"state", l.state, "payment_hash", hash.String(),
			"chan_id", l.chanID, "link_down", l.linkDown, "expiry", l.expiry,
			"blocks_left", int64(l.expiry)-int64(height))
	}
	for hash, l := range m.lingering {
		if _, still := found[hash]; !still {
			m.log.Info("the lingering HTLC is gone", "hold", l.hold.String(),
				"payment_hash", hash.String())
		}
	}
	m.lingering = found
	m.metrics.lingeringHTLCs(len(found))
}
