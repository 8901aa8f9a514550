package receiverlsp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// maxListed caps a mailbox listing: at most this many pending items can
// exist per receiver anyway (MaxPendingPerReceiver), give or take expiry.
const maxListed = 1000

// mailbox lists the receiver's pending items, oldest first, each with the
// text to sign to release it if the LSP offers one.
func (r *Role) mailbox(ctx context.Context, receiver onionmsg.NodeKey) ([]client.Item, error) {
	items, err := r.store.PendingItems(ctx, vertex(receiver), r.clock.Now(),
		min(maxListed, r.opts.MaxPendingPerReceiver))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	out := make([]client.Item, len(items))
	for i, it := range items {
		out[i] = toAPI(it)
		out[i].Sign = r.releaseText(&out[i])
	}
	return out, nil
}

// item returns the receiver's item for the sender LSP's hold. With wait > 0
// it first waits, up to wait, for the item to change past version after
// (after 0: to reach a final state), and returns it as it is then.
func (r *Role) item(ctx context.Context, receiver, sender onionmsg.NodeKey,
	hold onionmsg.HoldID, after uint64, wait time.Duration) (*client.Item, error) {

	var timeout <-chan time.Time
	if wait > 0 {
		timeout = r.clock.TickAfter(min(wait, r.opts.MaxWait))
	}
	key := itemKey{vertex(sender), holdstore.ID(hold)}
	for {
		changed, done := r.changed.wait(key)
		it, ready, err := r.ownItem(ctx, receiver, key, after)
		if err != nil || ready || timeout == nil {
			done()
			return it, err
		}
		select {
		case <-changed:
		case <-timeout:
			timeout = nil
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
		done()
	}
}

// ownItem reads the receiver's item, and whether it is what a long-poll
// waits for: a version past after, or (after 0) a final state.
func (r *Role) ownItem(ctx context.Context, receiver onionmsg.NodeKey,
	key itemKey, after uint64) (*client.Item, bool, error) {

	it, err := r.store.MailboxItem(ctx, key.sender, key.hold)
	switch {
	case errors.Is(err, holdstore.ErrItemNotFound),
		err == nil && nodeKey(it.ReceiverKey) != receiver:
		return nil, false, fmt.Errorf("%w: no mailbox item for hold %s of %s",
			ErrNotFound, onionmsg.HoldID(key.hold), nodeKey(key.sender))
	case err != nil:
		return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ready := it.State.Final()
	if after > 0 {
		ready = it.Version > after
	}
	out := toAPI(it)
	out.Sign = r.releaseText(&out)
	return &out, ready, nil
}

// release checks the receiver's signed release against its pending mailbox
// item and relays it to the sender LSP: recorded first (so Run relays it
// again if this send fails or the process stops), then sent. A release for
// an item released before is sent again: the sender LSP ignores a second
// one. Anything that does not match changes nothing and is logged.
func (r *Role) release(ctx context.Context, receiver onionmsg.NodeKey, raw []byte) (*client.Item, error) {
	rel, err := onionmsg.DecodeReleaseHeldHTLC(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	log := r.log.With("hold", rel.HoldID, "sender_lsp", rel.SenderLSPKey,
		"receiver", receiver)
	if rel.ReceiverKey != receiver {
		log.Warn("release names another receiver", "named", rel.ReceiverKey)
		return nil, fmt.Errorf("%w: the release is for receiver %s, the "+
			"token for %s", ErrForbidden, rel.ReceiverKey, receiver)
	}
	sender, hold := vertex(rel.SenderLSPKey), holdstore.ID(rel.HoldID)
	it, err := r.store.MailboxItem(ctx, sender, hold)
	switch {
	case errors.Is(err, holdstore.ErrItemNotFound),
		err == nil && nodeKey(it.ReceiverKey) != receiver:
		log.Warn("release for no mailbox item")
		return nil, fmt.Errorf("%w: no mailbox item for hold %s of %s",
			ErrNotFound, rel.HoldID, rel.SenderLSPKey)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	want := onionmsg.ReleaseExpect{
		HoldID: rel.HoldID, PaymentHash: it.PaymentHash,
		ReleaseSecret: it.ReleaseSecret, SenderLSPKey: rel.SenderLSPKey,
		ReceiverKey: receiver,
	}
	if err := onionmsg.VerifyRelease(rel, want, r.clock.Now(), r.opts.ReleaseSkew); err != nil {
		log.Warn("release refused", "err", err)
		return nil, releaseError(err)
	}
	switch it.State {
	case holdstore.MailboxPending:
		err = r.store.Update(ctx, func(tx *holdstore.Tx) error {
			return tx.ChangeMailboxItem(holdstore.MailboxChange{
				SenderLSP: sender, HoldID: hold, From: holdstore.MailboxPending,
				To: holdstore.MailboxReleased, Release: raw,
			})
		})
		if errors.Is(err, holdstore.ErrStaleTransition) {
			// Changed under us: look again.
			return r.release(ctx, receiver, raw)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		r.changed.notify(sender, hold)
	case holdstore.MailboxReleased:
		// A retry: send again.
	default:
		return nil, fmt.Errorf("%w: the item is %s", ErrConflict, it.State)
	}
	if err := r.relay(ctx, rel.SenderLSPKey, rel, raw); err != nil {
		log.Warn("release recorded, relay failed; will retry", "err", err)
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	log.Info("release relayed")
	return r.item(ctx, receiver, rel.SenderLSPKey, rel.HoldID, 0, 0)
}

// relay sends a recorded release to the sender LSP and marks it relayed.
func (r *Role) relay(ctx context.Context, to onionmsg.NodeKey,
	rel *onionmsg.ReleaseHeldHTLC, raw []byte) error {

	if err := r.msgr.Send(ctx, to, rel); err != nil {
		return err
	}
	return r.store.Update(ctx, func(tx *holdstore.Tx) error {
		return tx.MarkRelayed(vertex(to), holdstore.ID(rel.HoldID), raw)
	})
}

// releaseError maps VerifyRelease's failures to the API's.
func releaseError(err error) error {
	switch {
	case errors.Is(err, onionmsg.ErrHashMismatch),
		errors.Is(err, onionmsg.ErrSecretMismatch):
		return fmt.Errorf("%w: the release does not match the mailbox item "+
			"(payment hash or release secret)", ErrConflict)
	case errors.Is(err, onionmsg.ErrBadSignature),
		errors.Is(err, onionmsg.ErrInvalidSignatureEncoding):
		return fmt.Errorf("%w: the signature does not verify under the "+
			"receiver's node key", ErrInvalid)
	case errors.Is(err, onionmsg.ErrExpired),
		errors.Is(err, onionmsg.ErrFromFuture),
		errors.Is(err, onionmsg.ErrInvalidLifetime):
		return fmt.Errorf("%w: the release is not valid now: %v (sign a "+
			"fresh one)", ErrInvalid, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalid, err)
}

// toAPI is the item as the API shows it.
func toAPI(it *holdstore.MailboxItem) client.Item {
	return client.Item{
		SenderLSP:      nodeKey(it.SenderLSP),
		HoldID:         onionmsg.HoldID(it.HoldID),
		ReceiverKey:    nodeKey(it.ReceiverKey),
		PaymentHash:    client.Hex32(it.PaymentHash),
		AmountMsat:     it.AmountMsat,
		DeadlineHeight: it.DeadlineHeight,
		DeadlineTime:   it.DeadlineTime.UTC(),
		ReleaseSecret:  client.Hex32(it.ReleaseSecret),
		State:          string(it.State),
		Reason:         it.Reason,
		Version:        it.Version,
		CreatedAt:      it.CreatedAt.UTC(),
		UpdatedAt:      it.UpdatedAt.UTC(),
	}
}
