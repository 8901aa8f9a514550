package senderlsp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/clock"
)

// Refused creates are counted, by the code answered, in
// asynclsp_sender_creates_refused_total. While a receiver LSP does not
// answer, every create toward it is refused (503 receiver_lsp_unreachable):
// a log line each would bury the errors that matter, so the log says only
// when it stops answering and when it answers again.

// refuse answers a refused create, counts it and logs it (fail). A create
// the client abandoned is not a refusal.
func (a *API) refuse(w http.ResponseWriter, r *http.Request, err error, hold string) {
	if !abandoned(r, err) {
		a.m.metrics.createRefused(publicError(err).Code)
	}
	a.fail(w, r, err, hold)
}

// abandoned reports whether err ended the request because its client left.
func abandoned(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && r.Context().Err() != nil
}

// maxOutages bounds the receiver LSPs remembered as not answering: a wallet
// names the receiver LSP, and could name many. Beyond it, another one that
// does not answer is not logged; its refusals are still counted.
const maxOutages = 1024

// lspOutages remembers the receiver LSPs whose last invoice request went
// unanswered, to log each outage once when it starts and once when it ends.
type lspOutages struct {
	clock clock.Clock
	log   *slog.Logger

	mu   sync.Mutex
	down map[onionmsg.NodeKey]*outage
}

type outage struct {
	since   time.Time
	refused int // creates refused for it
}

func newLSPOutages(clk clock.Clock, log *slog.Logger) *lspOutages {
	return &lspOutages{clock: clk, log: log, down: map[onionmsg.NodeKey]*outage{}}
}

// observe learns from the result of a create to lsp whether it answered:
// it did if the create succeeded or was refused for what its answer said;
// it did not if it was refused as unreachable. Other results (lnd, the
// store, our capacity) say nothing of it.
func (o *lspOutages) observe(lsp onionmsg.NodeKey, err error) {
	switch {
	case errors.Is(err, ErrReceiverLSPUnreachable):
		o.unanswered(lsp, err)
	case err == nil, errors.Is(err, ErrUnknownReceiver), errors.Is(err, ErrNoInvoice),
		errors.Is(err, ErrAmountOutOfRange), errors.Is(err, ErrBadInvoice):
		o.answered(lsp)
	}
}

// unanswered logs the start of an outage (WARN), or counts a refusal in one
// already logged. The lines are written under the lock, so that the start
// and the end of an outage are logged in their order.
func (o *lspOutages) unanswered(lsp onionmsg.NodeKey, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if out, ok := o.down[lsp]; ok {
		out.refused++
		return
	}
	if len(o.down) >= maxOutages {
		return
	}
	o.down[lsp] = &outage{since: o.clock.Now(), refused: 1}
	o.log.Warn("receiver LSP unreachable: refusing payments to it until it "+
		"answers (503 receiver_lsp_unreachable, counted in "+
		"asynclsp_sender_creates_refused_total)", "receiver_lsp", lsp.String(),
		"err", err)
}

// answered logs the end of an outage (INFO), if there was one.
func (o *lspOutages) answered(lsp onionmsg.NodeKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out, ok := o.down[lsp]
	if !ok {
		return
	}
	delete(o.down, lsp)
	o.log.Info("receiver LSP answers again", "receiver_lsp", lsp.String(),
		"unanswered_for", o.clock.Now().Sub(out.since), "refused", out.refused)
}
