package senderlsp

import (
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/lspnet"
	"github.com/asynclsp/asynclsp/onionmsg"
)

// refusalWindow: the hold's receiver LSP is told a given refusal of a hold
// (same reason) at most once within it.
const refusalWindow = time.Minute

// maxRefusalsRemembered bounds the refusals remembered for the window.
// Once that many were told within the window, further ones are not told
// (a refusal is advice, never owed).
const maxRefusalsRemembered = 4096

// What became of a refused release's refusal: told to the hold's receiver
// LSP, or why nobody was told (a label of the refusals counter).
const (
	refusalTold           = "told"
	refusalNotReceiverLSP = "not_receiver_lsp"
	refusalNotHeld        = "not_held"
	refusalBadEnvelope    = "bad_envelope"
	refusalRepeated       = "repeated"
)

// refuse handles a release of r's hold that failed its check (verr), which
// the runner took while the hold was in state found. The release is
// dropped; the refusal is reported only to the party that can act on it
// and is entitled to know, and only when it says something (invariant 7,
// docs/protocol.md "Refusals"):
//
//   - the release was relayed by the hold's own receiver LSP (anyone else
//     relaying junk about the hold learns nothing, and nobody is told);
//   - the hold is HELD, waiting for a release: the refusal means "sign
//     again" (once released or finished, a refusal concerns nothing);
//   - the relaying LSP's envelope is authentic (checked before anything
//     is sent);
//   - it was not told the same refusal of the hold within refusalWindow.
//
// The deduplication comes before the send's goroutine: a flood of refused
// releases costs no goroutine and no message.
func (m *Manager) refuse(in *lspnet.Inbound, f fixedHold, rel *onionmsg.ReleaseHeldHTLC,
	found holdstore.State, verr error) error {

	m.metrics.release(releaseRejected)
	reason := rejectCode(verr)
	drop := lspnet.Drop(bus.ReasonBadSignature, verr)
	log := m.log.With("hold", f.id.String(), "from", in.From.String(),
		"reason", reason, "err", verr)
	fate := refusalTold
	switch {
	case in.From != f.receiverLSP:
		fate = refusalNotReceiverLSP
	case found != holdstore.StateHeld:
		fate = refusalNotHeld
	case in.Authentic() != nil:
		fate = refusalBadEnvelope
	case !m.refusals.first(refusalKey{f.id, reason}, m.clock.Now()):
		fate = refusalRepeated
	}
	m.metrics.refusal(fate)
	switch fate {
	case refusalTold:
		log.Warn("release refused: the receiver LSP is told")
		d, err := rel.Digest()
		if err != nil {
			// A decoded release always encodes: it came from bytes.
			log.Error("release digest", "err", err)
			return drop
		}
		m.tell(f, log, onionmsg.StatusRejected, holdstore.Reason(reason), d)
	case refusalRepeated:
		log.Debug("release refused: told within the window already")
	case refusalBadEnvelope:
		return in.Authentic()
	default:
		log.Warn("release refused: nobody told", "why", fate,
			"state", found)
	}
	return drop
}

// refusalKey names a refusal: a hold and a reason.
type refusalKey struct {
	hold   holdstore.ID
	reason string
}

// refusals remembers when each refusal was last told, for refusalWindow.
type refusals struct {
	mu   sync.Mutex
	told map[refusalKey]time.Time
}

// first reports whether k was not told within the window before now, and
// if so records it as told now. Entries older than the window are forgotten
// when the map is full; a map full of recent ones tells nothing more.
func (s *refusals) first(k refusalKey, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.told == nil {
		s.told = make(map[refusalKey]time.Time)
	}
	if at, ok := s.told[k]; ok && now.Sub(at) < refusalWindow {
		return false
	}
	if _, ok := s.told[k]; !ok && len(s.told) >= maxRefusalsRemembered {
		for old, at := range s.told {
			if now.Sub(at) >= refusalWindow {
				delete(s.told, old)
			}
		}
		if len(s.told) >= maxRefusalsRemembered {
			return false
		}
	}
	s.told[k] = now
	return true
}
