package receiverlsp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
	"github.com/btcsuite/btcd/btcec/v2"
)

// expectOf is what the sender LSP knows of a hold it sent.
func expectOf(m *onionmsg.HeldHTLCAvailable) onionmsg.ReleaseExpect {
	return onionmsg.ReleaseExpect{
		HoldID: m.HoldID, PaymentHash: m.PaymentHash,
		ReleaseSecret: m.ReleaseSecret, SenderLSPKey: m.SenderLSPKey,
		ReceiverKey: m.ReceiverKey,
	}
}

func (e *env) item(rc *receiver, m *onionmsg.HeldHTLCAvailable) *client.Item {
	e.t.Helper()
	it, err := rc.client.Item(e.ctx, m.SenderLSPKey, m.HoldID, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return it
}

func TestReleaseIsRecordedThenRelayed(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)
	items, _ := rc.client.Mailbox(e.ctx)
	it, err := rc.client.Release(e.ctx, &items[0], 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if it.State != client.StateReleased || it.Version != 2 {
		t.Fatalf("after release: %+v", it)
	}
	out := e.out.Sent()
	if len(out) != 1 || out[0].To != senderKey(0) {
		t.Fatalf("sent %+v", out)
	}
	rel := out[0].Msg.(*onionmsg.ReleaseHeldHTLC)
	// What the sender LSP will check.
	if err := onionmsg.VerifyRelease(rel, expectOf(m), e.clock.Now(), 0); err != nil {
		t.Fatalf("the relayed release does not verify: %v", err)
	}
	stored, _ := e.store.MailboxItem(e.ctx, vertex(senderKey(0)), holdstore.ID(m.HoldID))
	if !stored.Relayed || stored.Release == nil {
		t.Fatalf("stored %+v", stored)
	}
	// Posting again sends again and changes nothing visible.
	it, err = rc.client.Release(e.ctx, &items[0], 10*time.Minute)
	if err != nil || it.Version != 2 || len(e.out.Sent()) != 2 {
		t.Fatalf("retry: %+v, %v, sent %d", it, err, len(e.out.Sent()))
	}
	// Gone from the pending list.
	if items, _ := rc.client.Mailbox(e.ctx); len(items) != 0 {
		t.Fatalf("still listed: %+v", items)
	}
}

// Every release that is forged, misdirected, stale or for nothing pending
// is refused with a clear code, changes nothing, and is not relayed.
func TestBadReleasesChangeNothing(t *testing.T) {
	e := newEnv(t)
	rc, other, mallory := e.registered(0, ""), e.registered(1, ""), e.receiver(2)
	e.stock(rc, 5, 0)
	e.stock(other, 5, 0)
	m := e.hold(0, rc)
	theirs := e.hold(0, other)
	canceled := e.hold(1, rc)
	if err := e.role.applyOutcome(e.ctx, senderKey(1), &onionmsg.HoldOutcome{
		HoldID: canceled.HoldID, PaymentHash: canceled.PaymentHash,
		Status: onionmsg.StatusCanceled, Reason: "deadline_passed"}); err != nil {
		t.Fatal(err)
	}

	signed := func(h *onionmsg.HeldHTLCAvailable, s onionmsg.Signer, change func(*onionmsg.ReleaseHeldHTLC)) string {
		rel := onionmsg.NewRelease(h, e.clock.Now(), 10*time.Minute)
		if change != nil {
			change(rel)
		}
		if err := rel.Sign(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		raw, err := rel.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(raw)
	}
	stale := signed(m, rc.signer, nil)
	cases := []struct {
		name    string
		release func() string
		code    string
	}{
		{"no such hold", func() string {
			return signed(m, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) { r.HoldID = onionmsg.NewHoldID() })
		}, client.CodeNotFound},
		{"another sender LSP", func() string {
			return signed(m, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) { r.SenderLSPKey = senderKey(3) })
		}, client.CodeNotFound},
		{"signed by another key", func() string { return signed(m, mallory.signer, nil) },
			client.CodeInvalidRequest},
		{"wrong secret", func() string {
			return signed(m, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) { r.ReleaseSecret[0] ^= 1 })
		}, client.CodeConflict},
		{"wrong payment hash", func() string {
			return signed(m, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) { r.PaymentHash[0] ^= 1 })
		}, client.CodeConflict},
		{"another receiver's hold", func() string { return signed(theirs, other.signer, nil) },
			client.CodeForbidden},
		{"another receiver's hold, our key", func() string {
			return signed(theirs, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) { r.ReceiverKey = rc.key })
		}, client.CodeNotFound},
		{"a canceled hold", func() string { return signed(canceled, rc.signer, nil) },
			client.CodeConflict},
		{"expired", func() string { e.advance(13 * time.Minute); return stale },
			client.CodeInvalidRequest},
		{"from the future", func() string {
			return signed(m, rc.signer, func(r *onionmsg.ReleaseHeldHTLC) {
				r.CreatedAt = r.CreatedAt.Add(time.Hour)
				r.ExpiresAt = r.ExpiresAt.Add(time.Hour)
			})
		}, client.CodeInvalidRequest},
		{"not a release", func() string { return "00ff" }, client.CodeInvalidRequest},
		{"not hex", func() string { return "release" }, client.CodeInvalidRequest},
	}
	for _, c := range cases {
		raw := c.release()
		e.unchanged(c.name, func() {
			err := postReleaseHex(e, rc, raw)
			wantCode(t, c.name, err, c.code)
		})
	}
	if n := len(e.out.Sent()); n != 0 {
		t.Fatalf("%d bad releases relayed", n)
	}
	if it := e.item(rc, m); it.State != client.StatePending {
		t.Fatalf("item %+v", it)
	}
}

// postReleaseHex posts a release as rc, bypassing the client's signing.
func postReleaseHex(e *env, rc *receiver, raw string) error {
	c, err := client.New(client.Config{BaseURL: e.api.URL, NodeKey: rc.key,
		Signer: rc.signer, Token: rc.client.Token()})
	if err != nil {
		return err
	}
	_, err = c.PostRelease(e.ctx, raw)
	return err
}

// A release whose relay fails is kept as released and relayed by Run once
// the bus is back; the receiver's retry would do as well.
func TestUnrelayedReleasesAreRelayedAgain(t *testing.T) {
	e := newEnv(t)
	rc := e.registered(0, "")
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)
	e.out.Fail(errors.New("bus down"))
	_, err := rc.client.Release(e.ctx, e.item(rc, m), 10*time.Minute)
	wantCode(t, "relay while the bus is down", err, client.CodeUnavailable)
	if it := e.item(rc, m); it.State != client.StateReleased {
		t.Fatalf("item %+v", it)
	}
	e.out.Fail(nil)
	e.run()
	e.advance(31 * time.Second) // a sweep, and past RelayRetry
	testkit.Eventually(t, 5*time.Second, "the relay", func() bool {
		return len(e.out.Sent()) == 1
	})
	rel := e.out.Sent()[0].Msg.(*onionmsg.ReleaseHeldHTLC)
	if err := onionmsg.VerifyRelease(rel, expectOf(m), e.clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "relayed recorded", func() bool {
		it, _ := e.store.MailboxItem(e.ctx, vertex(senderKey(0)), holdstore.ID(m.HoldID))
		return it.Relayed
	})
	// Nothing more to relay.
	if left, err := e.store.Unrelayed(e.ctx, e.clock.Now().Add(time.Hour)); err != nil || len(left) != 0 {
		t.Fatalf("unrelayed %+v, %v", left, err)
	}
}

// A release signed as an ln_signature goes the same way as a BIP-340 one:
// checked, recorded, relayed as it is; the release_digest a sender LSP
// computes from what it received names the stored release.
func TestLNReleaseIsRecordedThenRelayed(t *testing.T) {
	e := newEnv(t)
	rc := e.lnReceiver(0)
	if _, err := rc.client.Register(e.ctx, ""); err != nil {
		t.Fatal(err)
	}
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)
	items, _ := rc.client.Mailbox(e.ctx)
	it, err := rc.client.Release(e.ctx, &items[0], 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if it.State != client.StateReleased {
		t.Fatalf("after release: %+v", it)
	}
	out := e.out.Sent()
	if len(out) != 1 || out[0].To != senderKey(0) {
		t.Fatalf("sent %+v", out)
	}
	rel := out[0].Msg.(*onionmsg.ReleaseHeldHTLC)
	if rel.Scheme() != onionmsg.SchemeLN {
		t.Fatalf("relayed a %v release", rel.Scheme())
	}
	if err := onionmsg.VerifyRelease(rel, expectOf(m), e.clock.Now(), 0); err != nil {
		t.Fatalf("the relayed release does not verify: %v", err)
	}
	stored, _ := e.store.MailboxItem(e.ctx, vertex(senderKey(0)), holdstore.ID(m.HoldID))
	onWire, err := rel.Encode()
	if err != nil || !bytes.Equal(stored.Release, onWire) {
		t.Fatalf("stored %x, relayed %x (%v)", stored.Release, onWire, err)
	}
	// What the sender LSP decodes and names in a hold_outcome.
	decoded, err := onionmsg.DecodeReleaseHeldHTLC(onWire)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := decoded.Digest(); err != nil || d != onionmsg.ReleaseDigest(stored.Release) {
		t.Fatalf("sender's digest %x (%v), receiver's %x", d, err,
			onionmsg.ReleaseDigest(stored.Release))
	}
}

// Forged, malleated and doubly signed ln_signature releases are refused,
// change nothing and are not relayed.
func TestBadLNReleasesChangeNothing(t *testing.T) {
	e := newEnv(t)
	rc, mallory := e.registered(0, ""), e.receiver(1)
	e.stock(rc, 3, 0)
	m := e.hold(0, rc)

	encode := func(rel *onionmsg.ReleaseHeldHTLC) []byte {
		raw, err := rel.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	signedBy := func(s onionmsg.MessageSigner) *onionmsg.ReleaseHeldHTLC {
		rel := onionmsg.NewRelease(m, e.clock.Now(), 10*time.Minute)
		if err := rel.SignLN(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		return rel
	}
	genuine := signedBy(rc.signer)
	good := encode(genuine)
	sigAt := len(good) - 65 // record 242 is the last

	// highS is the genuine release with its ln_signature's twin: s
	// replaced by n-s and the recovery code's parity flipped. It recovers
	// the same key; the decoder takes only the low-s form.
	highS := bytes.Clone(good)
	var s btcec.ModNScalar
	s.SetByteSlice(highS[sigAt+33:])
	s.Negate()
	s.PutBytesUnchecked(highS[sigAt+33:])
	highS[sigAt] = 31 + ((highS[sigAt] - 31) ^ 1)

	flipped := bytes.Clone(good)
	flipped[sigAt+10] ^= 1

	bip340 := onionmsg.NewRelease(m, e.clock.Now(), 10*time.Minute)
	if err := bip340.Sign(e.ctx, rc.signer); err != nil {
		t.Fatal(err)
	}
	b := encode(bip340)
	both := append(bytes.Clone(b), 0xf2, 0x41) // record 242 after 240
	both = append(both, good[sigAt:]...)

	for name, raw := range map[string][]byte{
		"signed by another key": encode(signedBy(mallory.signer)),
		"high-s twin":           highS,
		"r changed":             flipped,
		"both signatures":       both,
		"no signature":          good[:sigAt-2],
	} {
		e.unchanged(name, func() {
			err := postReleaseHex(e, rc, hex.EncodeToString(raw))
			wantCode(t, name, err, client.CodeInvalidRequest)
		})
	}
	if n := len(e.out.Sent()); n != 0 {
		t.Fatalf("%d bad releases relayed", n)
	}

	// The genuine one, posted raw by a wallet with only a BIP-340
	// client, goes through: the API takes either scheme.
	if err := postReleaseHex(e, rc, hex.EncodeToString(good)); err != nil {
		t.Fatal(err)
	}
	if it := e.item(rc, m); it.State != client.StateReleased {
		t.Fatalf("item %+v", it)
	}
}
