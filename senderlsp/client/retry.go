package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// ErrNoIdempotencyKey: a create is retried only with an idempotency key;
// without one, a retry after a lost answer could make a second payment.
var ErrNoIdempotencyKey = errors.New("client: a retried create needs an idempotency key")

// CreatePaymentRetry is CreatePayment as a wallet should call it: safe to
// repeat. It sends the request and, while the answer says to try again
// later (Error.Temporary: 503 for liquidity, slots, an unreachable
// receiver LSP or an LSP that is starting or stopping; any 5xx; 429) or
// no answer came at all (a refused connection, a cut one, a timeout), it
// waits and sends it again with the same idempotency key, so the LSP makes
// one payment however many of the requests reach it. The waits start at
// Config.RetryWait and double up to Config.MaxRetryWait. Any other answer
// is returned at once; after Config.RetryAttempts attempts, or when ctx
// ends, the last error is returned, wrapped.
//
// req.IdempotencyKey is required (ErrNoIdempotencyKey). Persist it before
// the first call, and call again with it after a crash. created is false
// when an earlier request with the key made the payment: another call's,
// or one of this call's whose answer was lost.
func (c *Client) CreatePaymentRetry(ctx context.Context,
	req CreatePaymentRequest) (p *Payment, created bool, err error) {

	if req.IdempotencyKey == "" {
		return nil, false, ErrNoIdempotencyKey
	}
	err = c.retry(ctx, "create payment", func() error {
		p, created, err = c.CreatePayment(ctx, req)
		return err
	})
	if err != nil {
		return nil, false, err
	}

	return p, created, nil
}

// retry makes call until it succeeds or fails for good (Retryable), its
// attempts are spent, or ctx ends, waiting between attempts on the clock.
func (c *Client) retry(ctx context.Context, op string, call func() error) error {
	wait := c.cfg.RetryWait
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil || ctx.Err() != nil || !Retryable(err) {
			return err
		}
		if c.cfg.RetryAttempts > 0 && attempt >= c.cfg.RetryAttempts {
			return fmt.Errorf("%s: gave up after %d attempts: %w", op,
				attempt, err)
		}
		c.log.Info("retrying", "op", op, "attempt", attempt, "wait", wait,
			"err", err)
		select {
		case <-c.cfg.Clock.TickAfter(wait):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w after %d attempts (last: %w)", op,
				ctx.Err(), attempt, err)
		}
		wait = min(2*wait, c.cfg.MaxRetryWait)
	}
}

// Retryable reports whether a call that failed with err may be sent again
// as it is: the API answered with a temporary error, or no answer came (a
// transport error: refused, cut or timed out).
func Retryable(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var transport *url.Error

	return errors.As(err, &transport)
}
