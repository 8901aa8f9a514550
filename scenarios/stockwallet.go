package scenarios

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/scenarios/regtest"
	"github.com/lightninglabs/lndclient"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
	"google.golang.org/grpc"
)

// lsps0Type is the BOLT8 message type of LSPS0 (bLIP-50).
const lsps0Type = 37913

// callTimeout bounds waiting for one answer.
const callTimeout = 30 * time.Second

// RPCError is a JSON-RPC 2.0 error the LSP answered.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("LSPS0 error %d: %s", e.Code, e.Message)
}

// RPCResponse is one JSON-RPC 2.0 response as it came.
type RPCResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      *string         `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// StockWallet is a receiver's wallet as the field's wallets run one: it
// talks to its LSP with nothing but lnd's stock RPCs, on its own gRPC
// connection. LSPS0 requests go out with SendCustomMessage (type 37913) and
// answers come back on SubscribeCustomMessages; it signs with lnrpc
// SignMessage. It imports none of asynclsp's client code.
type StockWallet struct {
	node *regtest.Node
	lsp  route.Vertex
	conn *grpc.ClientConn
	ln   lnrpc.LightningClient

	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	waiting map[string]chan RPCResponse
	// nullID gets the answers with "id": null (parse errors).
	nullID chan RPCResponse
	err    error
}

// DialStockWallet connects to n's lnd, follows its custom messages from
// lsp, and waits until an LSPS0 round trip works (lsps0.list_protocols):
// lnd delivers custom messages only to subscriptions open when they
// arrive. n must be connected to lsp.
func DialStockWallet(ctx context.Context, n *regtest.Node,
	lsp route.Vertex) (*StockWallet, error) {

	conn, err := lndclient.NewBasicConn(n.RPCAddr(), n.TLSCertPath,
		filepath.Dir(n.MacaroonPath), "regtest")
	if err != nil {
		return nil, fmt.Errorf("%s's wallet: %w", n.Name, err)
	}
	subCtx, stop := context.WithCancel(context.Background())
	w := &StockWallet{
		node: n, lsp: lsp, conn: conn, ln: lnrpc.NewLightningClient(conn),
		stop: stop, done: make(chan struct{}),
		waiting: map[string]chan RPCResponse{},
		nullID:  make(chan RPCResponse, 16),
	}
	stream, err := w.ln.SubscribeCustomMessages(subCtx,
		&lnrpc.SubscribeCustomMessagesRequest{})
	if err != nil {
		stop()
		conn.Close()
		return nil, fmt.Errorf("%s's wallet: SubscribeCustomMessages: %w",
			n.Name, err)
	}

	// Reads answers until Close.
	go w.read(stream)

	err = poll(ctx, n.Name+"'s first LSPS0 answer", func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var res struct {
			Protocols []int `json:"protocols"`
		}
		err := w.Call(ctx, "lsps0.list_protocols", struct{}{}, &res)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, context.DeadlineExceeded), isNotConnected(err):
			return false, nil // not subscribed yet, or the peer is away
		}
		return false, err
	})
	if err != nil {
		w.Close()
		return nil, err
	}

	return w, nil
}

func isNotConnected(err error) bool {
	var e *sendError
	return errors.As(err, &e)
}

// sendError: lnd did not send the message (the peer is not connected).
type sendError struct{ err error }

func (e *sendError) Error() string { return "SendCustomMessage: " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// read routes each LSPS0 answer from the LSP to its waiting call.
func (w *StockWallet) read(stream lnrpc.Lightning_SubscribeCustomMessagesClient) {
	defer close(w.done)
	for {
		m, err := stream.Recv()
		if err != nil {
			w.mu.Lock()
			w.err = err
			for id, ch := range w.waiting {
				close(ch)
				delete(w.waiting, id)
			}
			w.mu.Unlock()
			return
		}
		if m.Type != lsps0Type || route.Vertex(m.Peer) != w.lsp {
			continue
		}
		var r RPCResponse
		if err := json.Unmarshal(m.Data, &r); err != nil {
			continue
		}
		if r.ID == nil {
			select {
			case w.nullID <- r:
			default:
			}
			continue
		}
		w.mu.Lock()
		ch := w.waiting[*r.ID]
		delete(w.waiting, *r.ID)
		w.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

// Call sends one LSPS0 request and decodes its result into result (which
// may be nil). An error answer is an *RPCError.
func (w *StockWallet) Call(ctx context.Context, method string, params,
	result any) error {

	var id [16]byte
	rand.Read(id[:])
	req, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": hex.EncodeToString(id[:]),
		"method": method, "params": params,
	})
	if err != nil {
		return err
	}
	r, err := w.send(ctx, hex.EncodeToString(id[:]), req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if result != nil {
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("%s: result %s: %w", method, r.Result, err)
		}
	}

	return nil
}

// SendRaw sends payload as it is and returns the answer with id (empty:
// the answer with "id": null, as a parse error gets).
func (w *StockWallet) SendRaw(ctx context.Context, id string,
	payload []byte) (RPCResponse, error) {

	return w.send(ctx, id, payload)
}

func (w *StockWallet) send(ctx context.Context, id string,
	payload []byte) (RPCResponse, error) {

	// An LSP may drop a message (its rate limit): no answer ever comes.
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ch := w.nullID
	if id != "" {
		ch = make(chan RPCResponse, 1)
		w.mu.Lock()
		if w.err != nil {
			w.mu.Unlock()
			return RPCResponse{}, w.err
		}
		w.waiting[id] = ch
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			delete(w.waiting, id)
			w.mu.Unlock()
		}()
	}
	_, err := w.ln.SendCustomMessage(ctx, &lnrpc.SendCustomMessageRequest{
		Peer: w.lsp[:], Type: lsps0Type, Data: payload,
	})
	if err != nil {
		return RPCResponse{}, &sendError{err}
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return RPCResponse{}, fmt.Errorf("custom message stream ended: %w", w.err)
		}
		return r, nil
	case <-ctx.Done():
		return RPCResponse{}, ctx.Err()
	}
}

// SignMessage signs msg with the node key: lnrpc SignMessage, the zbase32
// ln_signature every wallet can make.
func (w *StockWallet) SignMessage(ctx context.Context, msg []byte) (string, error) {
	resp, err := w.ln.SignMessage(ctx, &lnrpc.SignMessageRequest{Msg: msg})
	if err != nil {
		return "", fmt.Errorf("%s: SignMessage: %w", w.node.Name, err)
	}

	return resp.Signature, nil
}

// Close ends the subscription and the connection.
func (w *StockWallet) Close() error {
	w.stop()
	<-w.done

	return w.conn.Close()
}
