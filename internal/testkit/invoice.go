package testkit

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// InvoiceOpts describe a BOLT11 invoice for Invoice. The zero value is an
// amountless regtest invoice created now, valid for an hour, without route
// hints.
type InvoiceOpts struct {
	Net     *chaincfg.Params
	Amount  lnwire.MilliSatoshi
	Created time.Time
	Expiry  time.Duration

	// Hint, if set, adds a route hint whose first hop is this node.
	Hint onionmsg.NodeKey

	// Preimage, if set, is the invoice's; otherwise a random one.
	Preimage *lntypes.Preimage

	// PaymentAddr, if set, is the invoice's payment address; otherwise a
	// random one. With Preimage and Created set, the invoice is the same
	// every time (its signature is RFC 6979's).
	PaymentAddr *[32]byte

	// ExplicitPayee puts the payee's key in the invoice (field n)
	// instead of leaving it to be recovered from the signature.
	ExplicitPayee bool
}

// Invoice makes a real BOLT11 invoice signed by payee, as lnd would, and
// returns it with its preimage.
func Invoice(t testing.TB, payee *btcec.PrivateKey, o InvoiceOpts) (string, lntypes.Preimage) {
	t.Helper()
	if o.Net == nil {
		o.Net = &chaincfg.RegressionNetParams
	}
	if o.Created.IsZero() {
		o.Created = time.Now()
	}
	if o.Expiry == 0 {
		o.Expiry = time.Hour
	}
	var preimage lntypes.Preimage
	if o.Preimage != nil {
		preimage = *o.Preimage
	} else {
		rand.Read(preimage[:])
	}
	var addr [32]byte
	if o.PaymentAddr != nil {
		addr = *o.PaymentAddr
	} else {
		rand.Read(addr[:])
	}
	opts := []func(*zpay32.Invoice){
		zpay32.Description("asynclsp test"),
		zpay32.Expiry(o.Expiry),
		zpay32.CLTVExpiry(80),
		zpay32.PaymentAddr(addr),
	}
	if o.Amount > 0 {
		opts = append(opts, zpay32.Amount(o.Amount))
	}
	if o.ExplicitPayee {
		opts = append(opts, zpay32.Destination(payee.PubKey()))
	}
	if !o.Hint.IsZero() {
		hop, err := o.Hint.PubKey()
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, zpay32.RouteHint([]zpay32.HopHint{{
			NodeID: hop, ChannelID: 0x0101_0000_0100_0001,
			FeeBaseMSat: 1000, FeeProportionalMillionths: 1,
			CLTVExpiryDelta: 80,
		}}))
	}
	inv, err := zpay32.NewInvoice(o.Net, preimage.Hash(), o.Created, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := inv.Encode(zpay32.MessageSigner{
		SignCompact: func(msg []byte) ([]byte, error) {
			return ecdsa.SignCompact(payee, chainhash.HashB(msg), true), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, preimage
}

// Tamper flips one bit of an invoice's timestamp and fixes up the
// checksum: a well-formed invoice whose signature no longer covers it.
func Tamper(t testing.TB, invoice string) string {
	t.Helper()
	hrp, data, err := bech32.DecodeNoLimit(invoice)
	if err != nil {
		t.Fatal(err)
	}
	data[3] ^= 1
	out, err := bech32.Encode(hrp, data)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
