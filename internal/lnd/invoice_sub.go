package lnd

import (
	"context"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/invoicesrpc"
	"github.com/lightningnetwork/lnd/lntypes"
)

// SubscribeSingleInvoice follows the invoice for hash. The first update is
// the invoice's current state; then one update per change, until the
// invoice is settled or canceled (the final update, after which Updates is
// closed and Err is nil). If lnd goes away, the subscription is opened again
// with backoff and the invoice re-read, so no state is missed. It fails at
// once with ErrInvoiceNotFound if lnd has no invoice for hash.
func (c *Client) SubscribeSingleInvoice(ctx context.Context,
	hash lntypes.Hash) (*Subscription[Invoice], error) {

	ctx, cancel := c.scope(ctx)
	s := &invoiceStream{c: c, hash: hash}

	err := c.openStream(ctx, "SubscribeSingleInvoice", s.open)
	if err != nil {
		cancel()
		return nil, err
	}

	sub := newSubscription[Invoice](cancel)
	err = c.goOwned(func() {
		defer s.close()
		sub.finish(s.run(ctx, sub))
	})
	if err != nil {
		s.close()
		cancel()

		return nil, mapError("SubscribeSingleInvoice", err)
	}

	return sub, nil
}

// invoiceStream is one invoice subscription and its current gRPC stream.
type invoiceStream struct {
	c    *Client
	hash lntypes.Hash

	// stream and closeStream belong to the open stream; current is the
	// invoice as read right after opening it.
	stream      invoicesrpc.Invoices_SubscribeSingleInvoiceClient
	closeStream context.CancelFunc
	current     Invoice

	// last is the last invoice delivered.
	last      Invoice
	delivered bool
}

// open subscribes, then reads the invoice, so no change between the two is
// lost. A failure leaves no stream open.
func (s *invoiceStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.invoices(streamCtx)
	stream, err := cl.SubscribeSingleInvoice(
		streamCtx, &invoicesrpc.SubscribeSingleInvoiceRequest{
			RHash: s.hash[:],
		},
	)
	if err != nil {
		cancel()
		return err
	}

	lookupCtx, lookupCancel := context.WithTimeout(ctx, s.c.cfg.RPCTimeout)
	defer lookupCancel()
	lookupCtx, lcl := s.c.lightning(lookupCtx)
	resp, err := lcl.LookupInvoice(lookupCtx, &lnrpc.PaymentHash{
		RHash: s.hash[:],
	})
	if err == nil {
		s.current, err = invoiceFromRPC(resp)
	}
	if err != nil {
		cancel()
		return err
	}
	s.stream, s.closeStream = stream, cancel

	return nil
}

// close ends the open stream, if any.
func (s *invoiceStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers the invoice read at open, then the stream's updates,
// reconnecting when the stream breaks. It returns nil after the final state
// was delivered, else why it stopped.
func (s *invoiceStream) run(ctx context.Context,
	sub *Subscription[Invoice]) error {

	const op = "SubscribeSingleInvoice"
	log := s.c.log.With("hash", s.hash)

	failures := 0
	for {
		// The state read right after (re)subscribing.
		if final, err := s.deliver(ctx, sub, s.current); final ||
			err != nil {

			return err
		}

		for {
			msg, err := s.stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return mapError(op, ctxErr(ctx))
				}
				if !isTransient(err) {
					return mapError(op, err)
				}
				s.c.streamLost(log, op, failures, err)

				break
			}
			failures = 0

			inv, err := invoiceFromRPC(msg)
			if err != nil {
				return mapError(op, err)
			}
			if final, err := s.deliver(ctx, sub, inv); final ||
				err != nil {

				return err
			}
		}

		if err := s.c.reconnect(ctx, op, s.open, &failures); err != nil {
			return err
		}
		log.Info("lnd stream re-established", "op", op,
			"state", s.current.State)
	}
}

// deliver sends inv unless it equals the last invoice sent. It reports
// whether inv is final.
func (s *invoiceStream) deliver(ctx context.Context,
	sub *Subscription[Invoice], inv Invoice) (bool, error) {

	if !s.delivered || !sameInvoiceState(s.last, inv) {
		if !sub.send(ctx, inv) {
			return false, mapError("SubscribeSingleInvoice",
				ctxErr(ctx))
		}
		s.last, s.delivered = inv, true
	}

	return inv.State.IsFinal(), nil
}

// sameInvoiceState reports whether a and b show the same state: invoice
// state, amount paid and every HTLC's state.
func sameInvoiceState(a, b Invoice) bool {
	if a.State != b.State || a.AmountPaidMsat != b.AmountPaidMsat ||
		len(a.HTLCs) != len(b.HTLCs) {

		return false
	}
	for i := range a.HTLCs {
		if a.HTLCs[i] != b.HTLCs[i] {
			return false
		}
	}

	return true
}
