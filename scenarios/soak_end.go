package scenarios

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	senderclient "github.com/asynclsp/asynclsp/senderlsp/client"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Bounds of the end of a soak.
const (
	// soakSettleTick is how often the settling looks at what is left.
	soakSettleTick = 2 * time.Second

	// soakMineChunk is the most blocks mined at once toward the last
	// deadlines.
	soakMineChunk = 40

	// soakJudgeSettle bounds the judge's wait for what is in flight at
	// lnd.
	soakJudgeSettle = time.Minute
)

// settle brings everything back, then waits, for up to cfg.Settle, until
// every payment is final at bob: once no payment dave is to release is
// left, it mines past the deadlines of the holds never released. A
// released payment still not final after half the time is stuck anyway
// (an outbound payment lnd never ends): it mines past its deadline, which
// changes nothing for a payment in flight (invariant 2), and on past the
// end of its outbound CLTV limit, where bob gives up a payment lnd keeps
// in flight with no HTLC left; never within soakHTLCExpiryGap blocks of
// an HTLC's expiry. Then it ends the flows still waiting.
func (s *soakRun) settle(ctx context.Context) {
	s.bringBack(ctx)
	s.progress("injector done; settling for up to %s", s.cfg.Settle)
	ended := make(chan struct{})
	go func() {
		s.pays.Wait()
		close(ended)
	}()
	start := time.Now()
	tick := time.NewTicker(soakSettleTick)
	defer tick.Stop()
	defer func() {
		s.payCancel()
		<-ended
	}()
	for {
		select {
		case <-ended:
			s.progress("every payment is final at bob")
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(start) > s.cfg.Settle {
			_, releases, n := s.liveDeadlines()
			// Reported with each payment (SoakReport.Unfinished).
			s.progress("%d payments (%d to be released) not final at bob "+
				"after %s", n, releases, s.cfg.Settle)
			return
		}
		top, releases, n := s.liveDeadlines()
		if n == 0 || (releases > 0 && time.Since(start) < s.cfg.Settle/2) {
			continue
		}
		top = max(top, s.outboundEnd())
		height, err := s.c.Net.Height(ctx)
		if err != nil || top < height {
			continue
		}
		lowest, err := s.lowestHTLCExpiry(ctx)
		if err != nil {
			s.progress("reading the HTLCs' expiries: %v", err)
			continue
		}
		steps := min(soakMineChunk, int(top-height)+1,
			int(lowest)-soakHTLCExpiryGap-int(height))
		if steps <= 0 {
			continue
		}
		blocks, err := s.mineSteps(ctx, steps)
		if err != nil {
			s.progress("mining toward the last deadlines: %v", err)
			continue
		}
		s.progress("mined %d blocks toward the last deadlines (%d holds "+
			"left, %d of them released, the last due at %d)", blocks, n,
			releases, top)
	}
}

// lowestHTLCExpiry is the lowest expiry of an HTLC pending on alice's or
// bob's channels; MaxUint32 if none is.
func (s *soakRun) lowestHTLCExpiry(ctx context.Context) (uint32, error) {
	lowest := uint32(math.MaxUint32)
	for _, n := range []*regtest.Node{s.c.Net.Alice, s.c.Net.Bob} {
		chans, err := n.Client.ListChannels(ctx)
		if err != nil {
			return 0, err
		}
		for _, ch := range chans {
			for _, h := range ch.HTLCs {
				lowest = min(lowest, h.ExpiryHeight)
			}
		}
	}

	return lowest, nil
}

// judge reads every lnd's ledger and judges the run by it, checks bob's
// word on each payment against it, and fills the report.
func (s *soakRun) judge(ctx context.Context) error {
	start := time.Now()
	defer func() { s.r.Judge = time.Since(start) }()
	var sent []Sent
	for _, r := range s.results {
		if r == nil || r.p == nil || r.unborn {
			continue
		}
		hash, err := Hash(r.p)
		if err != nil {
			return err
		}
		sent = append(sent, Sent{Hash: hash, Want: r.want(),
			AmountMsat: r.plan.Amount, FeeMsat: lnwire.MilliSatoshi(r.p.FeeMsat)})
	}
	report, err := s.c.Judge(ctx, Run{Sent: sent, Before: s.before,
		Settle: soakJudgeSettle, CommitFees: true})
	if err != nil {
		return err
	}
	s.r.Ledger = report
	if s.r.BrokenLinks, err = brokenLinks(s.c.Net.Nodes()); err != nil {
		return err
	}
	if report.Count(Stuck) > 0 {
		l, err := s.c.ReadLedgers(ctx)
		if err != nil {
			return err
		}
		s.r.LndFaults = lndFaults(report, l)
	}
	fates := map[string]Fate{}
	for _, v := range report.Payments {
		fates[v.Hash.String()] = v.Fate
	}

	s.r.Rows = map[SoakRow]int{}
	for i, r := range s.results {
		row := SoakRow{Kind: s.plan.Payments[i].Kind}
		switch {
		case r == nil:
			row.Fate = "not_started"
		case r.p == nil:
			row.Fate = "not_created"
		case r.unborn:
			row.Fate, row.Reason = "unborn", r.p.Reason
		default:
			row.Fate, row.Reason = string(fates[r.p.PaymentHash]), r.p.Reason
			s.agree(r, fates[r.p.PaymentHash])
		}
		if r != nil && r.gaveUp {
			row.Reason += " (alice gave up)"
		}
		s.r.Rows[row]++
		if r == nil {
			continue
		}
		for _, n := range r.notes {
			s.r.Notes = append(s.r.Notes, fmt.Sprintf("payment %d (%s): %s",
				i, r.plan.Kind, n))
		}
		if !r.released.IsZero() && !r.succeeded.IsZero() {
			if w := r.succeeded.Sub(r.released); w > s.r.LongestWait {
				s.r.LongestWait, s.r.LongestWaitPayment = w, i
			}
		}
	}
	s.mu.Lock()
	s.r.Incidents = append(s.r.Incidents, s.incidents...)
	s.mu.Unlock()

	return nil
}

// agree checks bob's word on a payment against the ledgers': a payment
// bob calls settled or canceled must be so at lnd, and resolved.
func (s *soakRun) agree(r *soakPaid, fate Fate) {
	p := r.p
	want := map[senderclient.State]Fate{senderclient.StateSettled: FateSettled,
		senderclient.StateCanceled: FateCanceled}[p.State]
	switch {
	case !p.State.Final() || !p.Resolved:
		s.r.Unfinished = append(s.r.Unfinished, fmt.Sprintf("payment %d "+
			"(%s) %s: bob says %s %q, resolved %v", r.i, r.plan.Kind,
			p.PaymentHash, p.State, p.Reason, p.Resolved))
	case fate != FatePending && fate != want:
		s.r.Ledger.Violations = append(s.r.Ledger.Violations, Violation{
			Kind: WrongFate, Node: regtest.Bob, Detail: fmt.Sprintf(
				"payment %d (%s) %s: bob says %s %q, the ledgers %s", r.i,
				r.plan.Kind, p.PaymentHash, p.State, p.Reason, fate)})
	}
}
