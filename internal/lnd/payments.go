package lnd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
)

// DefaultPaymentTimeout is how long lnd looks for a working route when
// SendPaymentRequest.Timeout is zero.
const DefaultPaymentTimeout = 60 * time.Second

// SendPaymentRequest describes a payment of a BOLT 11 invoice.
type SendPaymentRequest struct {
	// Invoice is the BOLT 11 invoice to pay (required).
	Invoice string

	// AmountMsat is the amount for an amountless invoice; it must be zero
	// for an invoice with an amount.
	AmountMsat lnwire.MilliSatoshi

	// FeeLimitMsat is the most routing fee to pay. Zero means what it
	// means to lnd: only routes without fees.
	FeeLimitMsat lnwire.MilliSatoshi

	// CLTVLimit is the largest total CLTV delta the route may use; zero
	// means lnd's own limit (--max-cltv-expiry).
	CLTVLimit uint32

	// MaxParts is the most HTLCs the payment may be split into; zero
	// means lnd's default (16).
	MaxParts uint32

	// MaxShardSizeMsat is the largest HTLC to send; zero means no limit.
	MaxShardSizeMsat lnwire.MilliSatoshi

	// Timeout is how long lnd keeps trying routes, in whole seconds;
	// zero means DefaultPaymentTimeout. HTLCs already sent still resolve
	// after it.
	Timeout time.Duration

	// OutgoingChanIDs restricts the first hop to these channels.
	OutgoingChanIDs []uint64
}

// SendPayment pays an invoice and follows the payment to its end. It
// returns once lnd has taken the payment (its first update is then waiting
// on Updates) or refused it. If lnd already has a payment for the invoice's
// hash that is in flight or succeeded, it fails with ErrPaymentExists: call
// TrackPayment instead. A failed payment may be sent again.
//
// The payment does not depend on the subscription: it goes on if ctx ends
// or lnd restarts. After a reconnect the payment is tracked, not sent again;
// if lnd lost the connection before it recorded the payment, it is sent once
// more.
func (c *Client) SendPayment(ctx context.Context,
	req SendPaymentRequest) (*Subscription[Payment], error) {

	const op = "SendPayment"
	if req.Invoice == "" {
		return nil, fmt.Errorf("lnd %s: %w: invoice is required", op,
			ErrInvalidRequest)
	}
	timeout, err := seconds(req.Timeout)
	if err != nil {
		return nil, fmt.Errorf("lnd %s: %w", op, err)
	}
	if timeout == 0 {
		timeout = int64(DefaultPaymentTimeout / time.Second)
	}
	payReq, err := zpay32.Decode(req.Invoice, c.params)
	if err != nil {
		return nil, fmt.Errorf("lnd %s: %w: %w", op, ErrInvalidRequest,
			err)
	}
	if payReq.PaymentHash == nil {
		return nil, fmt.Errorf("lnd %s: %w: invoice has no payment hash",
			op, ErrInvalidRequest)
	}

	s := &paymentStream{
		c:    c,
		op:   op,
		hash: lntypes.Hash(*payReq.PaymentHash),
		send: &routerrpc.SendPaymentRequest{
			PaymentRequest:    req.Invoice,
			AmtMsat:           int64(req.AmountMsat),
			FeeLimitMsat:      int64(req.FeeLimitMsat),
			CltvLimit:         int32(req.CLTVLimit),
			MaxParts:          req.MaxParts,
			MaxShardSizeMsat:  uint64(req.MaxShardSizeMsat),
			TimeoutSeconds:    int32(timeout),
			OutgoingChanIds:   req.OutgoingChanIDs,
			NoInflightUpdates: false,
		},
	}

	return c.startPayment(ctx, s)
}

// TrackPayment follows the payment for hash to its end. The first update is
// its current state. It fails with ErrPaymentNotFound if lnd never started
// a payment for hash.
func (c *Client) TrackPayment(ctx context.Context,
	hash lntypes.Hash) (*Subscription[Payment], error) {

	s := &paymentStream{c: c, op: "TrackPayment", hash: hash}

	return c.startPayment(ctx, s)
}

// startPayment opens s (sending or tracking), reads the first update, and
// hands the rest to a goroutine.
func (c *Client) startPayment(ctx context.Context,
	s *paymentStream) (*Subscription[Payment], error) {

	ctx, cancel := c.scope(ctx)
	if err := c.openStream(ctx, s.op, s.open); err != nil {
		s.close()
		cancel()

		return nil, err
	}

	sub := newSubscription[Payment](cancel)
	err := c.goOwned(func() {
		defer s.close()
		sub.finish(s.run(ctx, sub))
	})
	if err != nil {
		s.close()
		cancel()

		return nil, mapError(s.op, err)
	}

	return sub, nil
}

// paymentStream is one payment subscription and its current gRPC stream.
type paymentStream struct {
	c    *Client
	op   string
	hash lntypes.Hash

	// send is the payment to send (nil for TrackPayment). Once lnd has
	// recorded it, sent is set and the stream only tracks.
	send *routerrpc.SendPaymentRequest
	sent bool

	// uncertain is set when a send broke before lnd answered: lnd may or
	// may not have recorded the payment. Sending again tells: lnd
	// refuses a payment it has in flight or succeeded.
	uncertain bool

	stream      routerrpc.Router_TrackPaymentV2Client
	closeStream context.CancelFunc
	current     Payment

	last      Payment
	delivered bool
}

// errRecorded tells the reconnect loop to try again, tracking this time.
var errRecorded = fmt.Errorf("%w: payment already recorded, tracking it",
	ErrUnavailable)

// open sends the payment (if lnd does not have it yet) or tracks it, and
// reads the first update.
func (s *paymentStream) open(ctx context.Context) error {
	s.close()

	streamCtx, cancel := context.WithCancel(ctx)
	streamCtx, cl := s.c.router(streamCtx)

	sending := s.send != nil && !s.sent
	var (
		stream routerrpc.Router_TrackPaymentV2Client
		err    error
	)
	if sending {
		stream, err = cl.SendPaymentV2(streamCtx, s.send)
	} else {
		stream, err = cl.TrackPaymentV2(
			streamCtx, &routerrpc.TrackPaymentRequest{
				PaymentHash: s.hash[:],
			},
		)
	}
	var msg *lnrpc.Payment
	if err == nil {
		msg, err = stream.Recv()
	}
	if err == nil {
		s.current, err = paymentFromRPC(msg)
	}
	if err != nil {
		cancel()

		switch {
		// An earlier send of ours reached lnd before the connection
		// broke.
		case sending && s.uncertain &&
			errors.Is(classify(err), ErrPaymentExists):

			s.sent = true
			return errRecorded

		case sending && isTransient(err):
			s.uncertain = true
		}

		return err
	}

	s.stream, s.closeStream = stream, cancel
	s.sent = true

	return nil
}

// close ends the open stream, if any.
func (s *paymentStream) close() {
	if s.closeStream != nil {
		s.closeStream()
		s.closeStream = nil
	}
}

// run delivers the first update, then the stream's, reconnecting (and
// tracking) when the stream breaks. It returns nil after the final update.
func (s *paymentStream) run(ctx context.Context,
	sub *Subscription[Payment]) error {

	log := s.c.log.With("hash", s.hash)
	failures := 0
	for {
		if final, err := s.deliver(ctx, sub, s.current); final ||
			err != nil {

			return err
		}

		for {
			msg, err := s.stream.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return mapError(s.op, ctxErr(ctx))
				}
				if !isTransient(err) {
					return mapError(s.op, err)
				}
				s.c.streamLost(log, s.op, failures, err)

				break
			}
			failures = 0

			p, err := paymentFromRPC(msg)
			if err != nil {
				return mapError(s.op, err)
			}
			if final, err := s.deliver(ctx, sub, p); final ||
				err != nil {

				return err
			}
		}

		if err := s.c.reconnect(ctx, s.op, s.open, &failures); err != nil {
			return err
		}
		log.Info("lnd stream re-established", "op", s.op,
			"status", s.current.Status)
	}
}

// deliver sends p unless it shows the same state as the last update. It
// reports whether p is final.
func (s *paymentStream) deliver(ctx context.Context,
	sub *Subscription[Payment], p Payment) (bool, error) {

	if !s.delivered || !samePaymentState(s.last, p) {
		if !sub.send(ctx, p) {
			return false, mapError(s.op, ctxErr(ctx))
		}
		s.last, s.delivered = p, true
	}

	return p.Status.IsFinal(), nil
}

// samePaymentState reports whether a and b show the same state: status and
// the status of every HTLC attempt.
func samePaymentState(a, b Payment) bool {
	if a.Status != b.Status || len(a.HTLCs) != len(b.HTLCs) {
		return false
	}
	for i := range a.HTLCs {
		if a.HTLCs[i].AttemptID != b.HTLCs[i].AttemptID ||
			a.HTLCs[i].Status != b.HTLCs[i].Status {

			return false
		}
	}

	return true
}
