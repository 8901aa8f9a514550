package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/asynclsp/asynclsp/onionmsg"
)

// ReleaseRetry signs a release of the item, valid for ttl from now, once,
// and posts it with PostReleaseRetry.
func (c *Client) ReleaseRetry(ctx context.Context, it *Item, ttl time.Duration) (*Item, error) {
	rel, err := c.SignRelease(ctx, it, ttl)
	if err != nil {
		return nil, err
	}
	return c.PostReleaseRetry(ctx, rel)
}

// PostReleaseRetry is PostRelease as a wallet should call it. Posting a
// release again is harmless (the LSP relays a recorded release again, and
// the sender LSP acts on it once), so while the answer says to try again
// later (APIError.Temporary: 503 unavailable when the LSP's database or
// bus failed, any 5xx, 429) or no answer came (a refused connection, a cut
// one, a timeout), it waits and posts the same release again. The waits
// start at Config.RetryWait and double up to Config.MaxRetryWait; after
// Config.RetryAttempts attempts, or when ctx ends, the last error is
// returned, wrapped.
//
// An earlier attempt may have been recorded even though its answer was
// lost, and the item may have moved on since (settled, even). So a
// conflict answered after a failed attempt is not an error if the item is
// no longer pending: the item is returned as it is then. Any other answer
// is returned at once. The release expires (its ttl): retrying past that
// is refused as invalid_request; sign a fresh one.
func (c *Client) PostReleaseRetry(ctx context.Context, releaseHex string) (*Item, error) {
	var (
		it      *Item
		retried bool
	)
	err := c.retry(ctx, "post release", func() error {
		var err error
		it, err = c.PostRelease(ctx, releaseHex)
		if err != nil && Retryable(err) {
			retried = true
		}
		return err
	})
	if err == nil {
		return it, nil
	}
	if retried && IsCode(err, CodeConflict) {
		if cur, rerr := c.releasedItem(ctx, releaseHex); rerr == nil &&
			cur.State != StatePending {

			return cur, nil
		}
	}
	return nil, err
}

// releasedItem reads the item a release is for.
func (c *Client) releasedItem(ctx context.Context, releaseHex string) (*Item, error) {
	raw, err := hex.DecodeString(releaseHex)
	if err != nil {
		return nil, err
	}
	rel, err := onionmsg.DecodeReleaseHeldHTLC(raw)
	if err != nil {
		return nil, err
	}
	return c.Item(ctx, rel.SenderLSPKey, rel.HoldID, 0, 0)
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
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var transport *url.Error
	return errors.As(err, &transport)
}
