package regtest

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/asynclsp/asynclsp/scenarios/internal/proc"
	"os"
	"path/filepath"
	"sync"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// btcd's RPC credentials; the network only listens on 127.0.0.1.
const (
	btcdUser = "asynclsp"
	btcdPass = "asynclsp"
)

// segwitHeight is mined before anything else: btcd rejects witness
// transactions on regtest until segwit activates (about block 432).
const segwitHeight = 500

// fundingFee is the flat fee of the harness's funding transactions (one
// P2PKH input, a few outputs: about 50 sat/vB).
const fundingFee = 20_000

// btcd is the chain backend: one btcd process mining to a key the harness
// holds, so it can fund the lnd wallets without restarting btcd.
type btcd struct {
	dir      string
	p2pPort  int
	rpcPort  int
	certPath string
	confPath string
	params   *chaincfg.Params
	proc     *proc.Process
	rpc      *rpcclient.Client

	// key and addr receive every block reward.
	key      *btcec.PrivateKey
	addr     btcutil.Address
	pkScript []byte

	// mu guards mined and spent: the blocks we mined, in order, and how
	// many of their coinbases are spent.
	mu    sync.Mutex
	mined []minedBlock
	spent int
}

// minedBlock is a block mined by the harness.
type minedBlock struct {
	height int32
	hash   chainhash.Hash
}

// newBtcd prepares btcd's folder, ports and mining key.
func newBtcd(dir, binDir string, detach bool) (*btcd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, err
	}
	params := &chaincfg.RegressionNetParams
	addr, err := btcutil.NewAddressPubKeyHash(
		btcutil.Hash160(key.PubKey().SerializeCompressed()), params,
	)
	if err != nil {
		return nil, err
	}
	pkScript, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, err
	}
	p2p, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	rpcPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}

	b := &btcd{
		dir: dir, p2pPort: p2p, rpcPort: rpcPort,
		certPath: filepath.Join(dir, "rpc.cert"),
		confPath: filepath.Join(dir, "btcctl.conf"),
		params:   params, key: key, addr: addr, pkScript: pkScript,
	}
	b.proc = &proc.Process{
		Name: "btcd",
		Path: filepath.Join(binDir, "btcd"),
		Args: []string{
			"--regtest", "--txindex", "--rejectnonstd",
			"--nodnsseed", "--nobanning", "--nostalldetect",
			"--trickleinterval=100ms",
			"--datadir=" + filepath.Join(dir, "data"),
			"--logdir=" + filepath.Join(dir, "logs"),
			"--configfile=" + filepath.Join(dir, "btcd.conf"),
			fmt.Sprintf("--listen=127.0.0.1:%d", p2p),
			fmt.Sprintf("--rpclisten=127.0.0.1:%d", rpcPort),
			"--rpcuser=" + btcdUser, "--rpcpass=" + btcdPass,
			"--rpccert=" + b.certPath,
			"--rpckey=" + filepath.Join(dir, "rpc.key"),
			"--miningaddr=" + addr.EncodeAddress(),
			"--debuglevel=info",
		},
		// btcd creates an empty ~/.btcd whatever its flags say (it
		// asks the user database, not $HOME): a known trap.
		LogPath: filepath.Join(dir, "btcd.out"),
		Detach:  detach,
	}

	conf := fmt.Sprintf("regtest=1\nrpcuser=%s\nrpcpass=%s\n"+
		"rpcserver=127.0.0.1:%d\nrpccert=%s\n", btcdUser, btcdPass,
		rpcPort, b.certPath)
	if err := os.WriteFile(b.confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(
		filepath.Join(dir, "btcd.conf"), nil, 0o600,
	); err != nil {
		return nil, err
	}

	return b, nil
}

// start runs btcd and waits until its RPC server answers.
func (b *btcd) start(ctx context.Context) error {
	if err := b.proc.Start(""); err != nil {
		return err
	}

	return poll(ctx, "btcd RPC", func(context.Context) (bool, error) {
		if !b.proc.Running() {
			return false, fmt.Errorf("%w: see %s", errExited,
				b.proc.LogPath)
		}
		// btcd writes its certificate while we may read it: only a
		// complete one will do, and a client that fails is dropped so
		// the next round reads the file again.
		cert, err := os.ReadFile(b.certPath)
		if err != nil {
			return false, err
		}
		if block, _ := pem.Decode(cert); block == nil {
			return notYet("incomplete rpc.cert")
		}
		if b.rpc == nil {
			b.rpc, err = rpcclient.New(&rpcclient.ConnConfig{
				Host:         fmt.Sprintf("127.0.0.1:%d", b.rpcPort),
				User:         btcdUser,
				Pass:         btcdPass,
				Certificates: cert,
				HTTPPostMode: true,
			}, nil)
			if err != nil {
				return false, err
			}
		}
		if _, err := b.rpc.GetBlockCount(); err != nil {
			b.rpc.Shutdown()
			b.rpc = nil

			return false, err
		}

		return true, nil
	})
}

// stop stops btcd. Every lnd must be stopped first, or lnd hangs.
func (b *btcd) stop(ctx context.Context) error {
	if b.rpc != nil {
		b.rpc.Shutdown()
	}

	return b.proc.Stop(ctx, stopTimeout)
}

// height returns btcd's best height.
func (b *btcd) height() (int32, error) {
	h, err := b.rpc.GetBlockCount()

	return int32(h), err
}

// generate mines n blocks to the harness's key.
func (b *btcd) generate(n int) error {
	start, err := b.height()
	if err != nil {
		return fmt.Errorf("mine: %w", err)
	}
	hashes, err := b.rpc.Generate(uint32(n))
	if err != nil {
		return fmt.Errorf("mine %d blocks: %w", n, err)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for i, h := range hashes {
		b.mined = append(b.mined, minedBlock{
			height: start + int32(i) + 1, hash: *h,
		})
	}

	return nil
}

// send pays the outputs from one mature coinbase of ours, the rest back to
// our key, and broadcasts the transaction.
func (b *btcd) send(outputs []*wire.TxOut) (*chainhash.Hash, error) {
	tip, err := b.height()
	if err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	maturity := int32(b.params.CoinbaseMaturity)
	if b.spent >= len(b.mined) || b.mined[b.spent].height > tip-maturity {
		return nil, errors.New("fund: no mature coinbase left; mine more")
	}
	block, err := b.rpc.GetBlock(&b.mined[b.spent].hash)
	if err != nil {
		return nil, fmt.Errorf("fund: %w", err)
	}
	coinbase := block.Transactions[0]

	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(
		wire.NewOutPoint(ptr(coinbase.TxHash()), 0), nil, nil,
	))
	change := coinbase.TxOut[0].Value - fundingFee
	for _, out := range outputs {
		tx.AddTxOut(out)
		change -= out.Value
	}
	if change < 0 {
		return nil, fmt.Errorf("fund: outputs exceed a coinbase of %d",
			coinbase.TxOut[0].Value)
	}
	if change > 0 {
		tx.AddTxOut(wire.NewTxOut(change, b.pkScript))
	}

	sigScript, err := txscript.SignatureScript(
		tx, 0, b.pkScript, txscript.SigHashAll, b.key, true,
	)
	if err != nil {
		return nil, fmt.Errorf("fund: sign: %w", err)
	}
	tx.TxIn[0].SignatureScript = sigScript

	txid, err := b.rpc.SendRawTransaction(tx, true)
	if err != nil {
		return nil, fmt.Errorf("fund: broadcast: %w", err)
	}
	b.spent++

	return txid, nil
}

// payTo returns an output paying sat to an address of lnd's.
func (b *btcd) payTo(addr string, sat int64) (*wire.TxOut, error) {
	a, err := btcutil.DecodeAddress(addr, b.params)
	if err != nil {
		return nil, err
	}
	script, err := txscript.PayToAddrScript(a)
	if err != nil {
		return nil, err
	}

	return wire.NewTxOut(sat, script), nil
}

// btcctl returns the command line of btcctl for this btcd.
func (b *btcd) btcctl(binDir string) []string {
	return []string{filepath.Join(binDir, "btcctl"), "-C", b.confPath}
}

func ptr[T any](v T) *T {
	return &v
}
