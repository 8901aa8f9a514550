package lnd

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// do runs one unary call to lnd. While lnd is unreachable, starting or
// shutting down, the call is repeated with backoff for up to RetryFor; after
// that it fails with ErrUnavailable. Each attempt is bounded by RPCTimeout
// and counted in flight (Config.Metrics) while it runs. Errors are mapped
// to our sentinels (mapError).
func (c *Client) do(ctx context.Context, op string,
	call func(ctx context.Context) error) error {

	ctx, cancel := c.scope(ctx)
	defer cancel()

	start := c.cfg.Clock.Now()
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return mapError(op, ctxErr(ctx))
		}

		callCtx, cancelCall := context.WithTimeout(ctx, c.cfg.RPCTimeout)
		c.cfg.Metrics.begin()
		err := call(callCtx)
		c.cfg.Metrics.end()
		cancelCall()

		switch {
		case err == nil:
			return nil

		case ctx.Err() != nil:
			return mapError(op, ctxErr(ctx))

		case !isTransient(err):
			return mapError(op, err)

		case c.cfg.Clock.Now().Sub(start) >= c.cfg.RetryFor:
			return fmt.Errorf("lnd %s: %w for %v: %w", op,
				ErrUnavailable, c.cfg.RetryFor, err)
		}

		c.log.Debug("lnd call failed, retrying", "op", op,
			"attempt", attempt+1, "err", err)
		if err := c.backoff(ctx, attempt); err != nil {
			return mapError(op, err)
		}
	}
}

// backoff waits before reconnect attempt number attempt+1: MinBackoff,
// doubling up to MaxBackoff. It returns early with the context's error. It
// also asks gRPC to reconnect at once instead of after its own (longer)
// backoff.
func (c *Client) backoff(ctx context.Context, attempt int) error {
	if c.svc != nil {
		c.svc.ClientConn.ResetConnectBackoff()
	}

	select {
	case <-c.cfg.Clock.TickAfter(backoffDelay(
		c.cfg.MinBackoff, c.cfg.MaxBackoff, attempt,
	)):
		return nil

	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// backoffDelay returns min * 2^attempt, capped at max.
func backoffDelay(minDelay, maxDelay time.Duration, attempt int) time.Duration {
	d := minDelay
	for i := 0; i < attempt && d < maxDelay; i++ {
		d *= 2
	}

	return min(d, maxDelay)
}

// reconnect calls open, after a backoff, until it succeeds, ctx ends, or it
// fails with an error that is not transient; each attempt counts in flight
// like do's. Streams use it: they are re-established for as long as their
// context lives. failures counts the stream's consecutive failures; the
// caller resets it when the stream delivers a message, so a stream that
// breaks again right after opening backs off further each time.
func (c *Client) reconnect(ctx context.Context, op string,
	open func(ctx context.Context) error, failures *int) error {

	for {
		if err := c.backoff(ctx, *failures); err != nil {
			return mapError(op, err)
		}
		*failures++

		c.cfg.Metrics.begin()
		err := open(ctx)
		c.cfg.Metrics.end()
		switch {
		case err == nil:
			return nil

		case ctx.Err() != nil:
			return mapError(op, ctxErr(ctx))

		case !isTransient(err):
			return mapError(op, err)
		}
		c.log.Debug("lnd stream still down", "op", op,
			"attempt", *failures, "err", err)
	}
}

// streamLost logs a broken stream: the first break of a run at Info, the
// breaks right after a reconnect at Debug.
func (c *Client) streamLost(log *slog.Logger, op string, failures int,
	err error) {

	level := slog.LevelInfo
	if failures > 0 {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, "lnd stream lost, reconnecting",
		"op", op, "err", err)
}

// openStream opens a subscription's stream, repeating like do while lnd is
// away, but calls open with ctx itself rather than a per-attempt context:
// the stream must live on after the attempt. ctx is the subscription's.
func (c *Client) openStream(ctx context.Context, op string,
	open func(ctx context.Context) error) error {

	return c.do(ctx, op, func(context.Context) error { return open(ctx) })
}
