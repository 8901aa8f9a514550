package lnd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testClient is a Client without a connection, for the retry logic.
func testClient(retryFor time.Duration) *Client {
	cfg := Config{
		RetryFor:   retryFor,
		MinBackoff: time.Millisecond,
		MaxBackoff: 4 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}.withDefaults()
	closed, closeFn := context.WithCancelCause(context.Background())

	return &Client{cfg: cfg, log: cfg.Logger, closed: closed,
		close: closeFn}
}

func TestDoRetriesWhileLndIsAway(t *testing.T) {
	c := testClient(time.Minute)
	calls := 0
	err := c.do(context.Background(), "Op", func(context.Context) error {
		calls++
		if calls < 4 {
			return status.Error(codes.Unavailable, "connection refused")
		}

		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("do = %v after %d calls, want success after 4", err,
			calls)
	}
}

func TestDoGivesUpAfterRetryFor(t *testing.T) {
	c := testClient(20 * time.Millisecond)
	calls := 0
	err := c.do(context.Background(), "Op", func(context.Context) error {
		calls++
		return status.Error(codes.Unknown, "the RPC server is in the "+
			"process of starting up, but not yet ready to accept calls")
	})
	if !errors.Is(err, ErrUnavailable) || calls < 2 {
		t.Fatalf("do = %v after %d calls, want ErrUnavailable after "+
			"retrying", err, calls)
	}
}

func TestDoDoesNotRetryOtherErrors(t *testing.T) {
	c := testClient(time.Minute)
	calls := 0
	err := c.do(context.Background(), "Op", func(context.Context) error {
		calls++
		return status.Error(codes.Unknown, "invoice already canceled")
	})
	if !errors.Is(err, ErrInvoiceCanceled) || calls != 1 {
		t.Fatalf("do = %v after %d calls", err, calls)
	}
}

func TestDoStopsOnContextAndClose(t *testing.T) {
	c := testClient(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	err := c.do(ctx, "Op", func(context.Context) error {
		cancel()
		return status.Error(codes.Unavailable, "gone")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("do after cancel = %v", err)
	}

	// A call blocked in lnd returns when the client closes.
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.do(context.Background(), "Op",
			func(ctx context.Context) error {
				close(started)
				<-ctx.Done()
				return status.FromContextError(ctx.Err()).Err()
			})
	}()
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("do after Close = %v, want ErrClosed", err)
	}
	err = c.do(context.Background(), "Op", func(context.Context) error {
		t.Fatal("called after Close")
		return nil
	})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("do after Close = %v", err)
	}
}

func TestReconnectBacksOffAcrossBreaks(t *testing.T) {
	c := testClient(time.Minute)
	failures := 0
	opens := 0
	err := c.reconnect(context.Background(), "Op",
		func(context.Context) error {
			opens++
			if opens < 3 {
				return io.EOF
			}

			return nil
		}, &failures)
	if err != nil || opens != 3 || failures != 3 {
		t.Fatalf("reconnect = %v, %d opens, %d failures", err, opens,
			failures)
	}

	// A permanent error ends the stream.
	err = c.reconnect(context.Background(), "Op",
		func(context.Context) error {
			return status.Error(codes.PermissionDenied, "macaroon")
		}, &failures)
	if err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("reconnect on a permanent error = %v", err)
	}
}
