package receiverlsp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
)

// maxWebhookURL bounds a webhook URL.
const maxWebhookURL = 1024

// newChallenge issues a registration challenge for the receiver key: see
// client.Challenge for its bytes. Nothing is stored; the mac proves later
// that this LSP issued it.
func (r *Role) newChallenge(key onionmsg.NodeKey) *client.Challenge {
	c := &client.Challenge{
		LSPKey:      r.self,
		ReceiverKey: key,
		ExpiresAt:   seconds(r.clock.Now().Add(r.opts.ChallengeTTL)),
	}
	rand.Read(c.Nonce[:])
	copy(c.MAC[:], r.challengeMAC(c))
	return c
}

func (r *Role) challengeMAC(c *client.Challenge) []byte {
	m := hmac.New(sha256.New, r.macKey)
	m.Write(c.Unauthenticated())
	return m.Sum(nil)
}

// Registration is the proven answer to a challenge.
type Registration struct {
	Receiver onionmsg.NodeKey
	Token    string
}

// registerReceiver checks a receiver's signed challenge and registers it, or
// re-registers it with a new token (the old one stops working) and the
// given webhook. The token is "<node key hex>.<32 random bytes hex>"; only
// the SHA-256 of its random part is stored.
//
// The signature is BIP-340 or an ln_signature (verifyRegistration), so a
// wallet that can only signmessage registers too. A challenge this LSP did
// not issue, for another key or LSP, expired, signed by another key (in
// either scheme), or answered before, is refused and changes nothing.
func (r *Role) registerReceiver(ctx context.Context, req *client.RegisterRequest) (*Registration, error) {
	raw, err := hex.DecodeString(req.Challenge)
	if err != nil {
		return nil, fmt.Errorf("%w: challenge is not hex", ErrInvalid)
	}
	c, err := client.ParseChallenge(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if !hmac.Equal(c.MAC[:], r.challengeMAC(c)) {
		r.log.Warn("registration with a forged challenge", "receiver", req.NodeKey)
		return nil, fmt.Errorf("%w: this LSP did not issue the challenge "+
			"(or restarted since): ask for a new one", ErrInvalid)
	}
	if err := c.Check(r.self, req.NodeKey, r.clock.Now()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := verifyRegistration(raw, req.Signature, req.NodeKey); err != nil {
		if !errors.Is(err, errSigNotVerified) {
			return nil, err
		}
		r.log.Warn("registration signature does not verify",
			"receiver", req.NodeKey, "err", err)
		return nil, fmt.Errorf("%w: the signature does not verify under "+
			"the node key", ErrInvalid)
	}
	if req.WebhookURL != "" {
		// The webhook_url is lsps5.set_webhook's with the app_name
		// "default": the same checks and the same limit, in the
		// registration's transaction.
		if err := validateWebhookURL(req.WebhookURL); err != nil {
			return nil, fmt.Errorf("%w: webhook_url: %w", ErrInvalid, err)
		}
	}

	var secret [32]byte
	rand.Read(secret[:])
	err = r.store.Update(ctx, func(tx *holdstore.Tx) error {
		if err := tx.UseChallenge(c.Nonce, c.ExpiresAt); err != nil {
			return err
		}
		err := tx.PutReceiver(vertex(req.NodeKey), sha256.Sum256(secret[:]), "")
		if err != nil || req.WebhookURL == "" {
			return err
		}
		_, err = r.setWebhookTx(tx, req.NodeKey, holdstore.DefaultAppName,
			req.WebhookURL)
		return err
	})
	var tooMany *lsps5Error
	switch {
	case errors.As(err, &tooMany):
		return nil, tooMany
	case errors.Is(err, holdstore.ErrChallengeUsed):
		r.log.Warn("replayed registration challenge", "receiver", req.NodeKey)
		return nil, fmt.Errorf("%w: challenge already answered", ErrConflict)
	case err != nil:
		return nil, fmt.Errorf("%w: register: %w", ErrUnavailable, err)
	}
	r.log.Info("receiver registered", "receiver", req.NodeKey,
		"webhook", req.WebhookURL != "")
	return &Registration{
		Receiver: req.NodeKey,
		Token:    req.NodeKey.String() + "." + hex.EncodeToString(secret[:]),
	}, nil
}

// errSigNotVerified: a registration signature, well formed, that is not
// the node key's over the challenge.
var errSigNotVerified = errors.New("signature does not verify")

// verifyRegistration checks sig is key's over the challenge, in either
// scheme, told apart by its length: 128 hex digits are a BIP-340 signature
// under onionmsg.TagRegister over the challenge bytes; 104 characters are
// an ln_signature (zbase32) over onionmsg.RegisterLNMessage(challenge),
// checked by recovering its key and comparing it with key (lnd's
// VerifyMessage would look the key up in its graph, where a private
// wallet is not). A malformed signature is ErrInvalid; one that does not
// verify, errSigNotVerified.
func verifyRegistration(challenge []byte, sig string, key onionmsg.NodeKey) error {
	var err error
	switch len(sig) {
	case 128:
		var raw [64]byte
		if _, herr := hex.Decode(raw[:], []byte(sig)); herr != nil {
			return fmt.Errorf("%w: signature is not hex", ErrInvalid)
		}
		err = onionmsg.VerifyTagged([]byte(onionmsg.TagRegister), challenge, raw, key)
	case onionmsg.LNSignatureLen:
		if _, perr := onionmsg.ParseLNSignature(sig); perr != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, perr)
		}
		err = onionmsg.VerifyLNSignature(onionmsg.RegisterLNMessage(challenge), sig, key)
	default:
		return fmt.Errorf("%w: signature must be 128 hex digits (BIP-340) or "+
			"a %d-character zbase32 ln_signature", ErrInvalid, onionmsg.LNSignatureLen)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errSigNotVerified, err)
	}
	return nil
}

// dummyHash is compared against when a token names no receiver, so that an
// unknown receiver costs the same as a wrong token.
var dummyHash = sha256.Sum256([]byte("asynclsp no such receiver"))

// authenticate returns the receiver a bearer token belongs to. The token's
// hash is compared in constant time.
func (r *Role) authenticate(ctx context.Context, token string) (onionmsg.NodeKey, error) {
	keyHex, secretHex, ok := strings.Cut(token, ".")
	var secret [32]byte
	if !ok || len(secretHex) != 64 {
		return onionmsg.NodeKey{}, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	key, err := onionmsg.ParseNodeKey(keyHex)
	if err != nil {
		return onionmsg.NodeKey{}, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	if _, err := hex.Decode(secret[:], []byte(secretHex)); err != nil {
		return onionmsg.NodeKey{}, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	want := dummyHash
	rec, err := r.store.Receiver(ctx, vertex(key))
	switch {
	case err == nil:
		want = rec.TokenHash
	case !errors.Is(err, holdstore.ErrUnknownReceiver):
		return onionmsg.NodeKey{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	got := sha256.Sum256(secret[:])
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || rec == nil {
		return onionmsg.NodeKey{}, fmt.Errorf("%w: unknown or revoked token",
			ErrUnauthorized)
	}
	return key, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
