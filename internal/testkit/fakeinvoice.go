package testkit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// fakeInvoicePrefix marks invoices only the fake lnd understands.
const fakeInvoicePrefix = "lnbcrtfake1"

// fakeInvoice is what a fake invoice string carries: everything DecodePayReq
// returns, and the preimage, so that any FakeLnd (in any process) can decode
// the invoice and, paying it, learn the preimage as the receiver would
// reveal it.
type fakeInvoice struct {
	Dest     route.Vertex
	Amount   lnwire.MilliSatoshi
	Created  time.Time
	Expiry   time.Duration
	Preimage lntypes.Preimage
}

// FakeInvoice makes an invoice of dest for amount (0: amountless), created
// at now and valid for expiry, and returns it with its preimage.
func FakeInvoice(dest onionmsg.NodeKey, amount lnwire.MilliSatoshi, now time.Time,
	expiry time.Duration) (string, lntypes.Preimage) {

	var p lntypes.Preimage
	if _, err := rand.Read(p[:]); err != nil {
		panic(err)
	}
	b, _ := json.Marshal(fakeInvoice{Dest: route.Vertex(dest), Amount: amount,
		Created: now, Expiry: expiry, Preimage: p})
	return fakeInvoicePrefix + hex.EncodeToString(b), p
}

func decodeFakeInvoice(s string) (fakeInvoice, lnd.PayReq, error) {
	var fi fakeInvoice
	raw, err := hex.DecodeString(strings.TrimPrefix(s, fakeInvoicePrefix))
	if err != nil || !strings.HasPrefix(s, fakeInvoicePrefix) {
		return fi, lnd.PayReq{}, fmt.Errorf("%w: not a fake invoice", lnd.ErrInvalidRequest)
	}
	if err := json.Unmarshal(raw, &fi); err != nil {
		return fi, lnd.PayReq{}, fmt.Errorf("%w: %v", lnd.ErrInvalidRequest, err)
	}
	return fi, lnd.PayReq{
		Destination: fi.Dest, Hash: fi.Preimage.Hash(), AmountMsat: fi.Amount,
		Timestamp: fi.Created, Expiry: fi.Expiry, CltvExpiry: 80, RouteHints: 1,
	}, nil
}
