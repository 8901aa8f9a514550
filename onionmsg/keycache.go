package onionmsg

import (
	"sync"
	"sync/atomic"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
)

// Parsing a point costs a square root (about 10 µs on a slow CPU), and the
// same few keys (the LSPs', the receivers') recur in every message: decoding
// checks each key is on the curve, verifying parses it again. keyCache
// remembers the keys that parsed; it is bounded, and past its size it
// simply stops remembering. Parsing is a pure function of the bytes, so a
// cached answer is the answer.
type keyCache[K comparable] struct {
	m     sync.Map // K -> *btcec.PublicKey
	size  atomic.Int64
	parse func(K) (*btcec.PublicKey, error)
}

const keyCacheMax = 4096

func (c *keyCache[K]) get(k K) (*btcec.PublicKey, error) {
	if pk, ok := c.m.Load(k); ok {
		return pk.(*btcec.PublicKey), nil
	}
	pk, err := c.parse(k)
	if err != nil {
		return nil, err
	}
	if c.size.Load() < keyCacheMax {
		if _, loaded := c.m.LoadOrStore(k, pk); !loaded {
			c.size.Add(1)
		}
	}
	return pk, nil
}

var (
	compressedKeys = keyCache[NodeKey]{parse: func(k NodeKey) (*btcec.PublicKey, error) {
		return btcec.ParsePubKey(k[:])
	}}
	xOnlyKeys = keyCache[[32]byte]{parse: func(k [32]byte) (*btcec.PublicKey, error) {
		return schnorr.ParsePubKey(k[:])
	}}
)
