package lnd

import "context"

// Subscription delivers updates from lnd until it ends: after a final update
// (an invoice settled or canceled, a payment succeeded or failed), when its
// context ends, on Close, on Client.Close, or on an error that reconnecting
// cannot fix. Read Updates until it is closed, then Err says why it ended.
//
// Updates are snapshots: after a reconnect the current state is read again
// and delivered if it changed, so a consumer sees every state it could act
// on but may see the same state twice.
type Subscription[T any] struct {
	updates chan T
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
}

func newSubscription[T any](cancel context.CancelFunc) *Subscription[T] {
	return &Subscription[T]{
		updates: make(chan T),
		done:    make(chan struct{}),
		cancel:  cancel,
	}
}

// Updates returns the channel of updates. It is closed when the
// subscription ends.
func (s *Subscription[T]) Updates() <-chan T {
	return s.updates
}

// Done is closed when the subscription has ended.
func (s *Subscription[T]) Done() <-chan struct{} {
	return s.done
}

// Err returns nil while the subscription runs and after it ended with a
// final update; otherwise why it ended (the context's error, ErrClosed, or
// lnd's error wrapped).
func (s *Subscription[T]) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription and waits until its goroutine has returned.
func (s *Subscription[T]) Close() {
	s.cancel()
	<-s.done
}

// send delivers v unless ctx ends first.
func (s *Subscription[T]) send(ctx context.Context, v T) bool {
	select {
	case s.updates <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// finish records why the subscription ended and closes its channels. Only
// the subscription's goroutine calls it, once.
func (s *Subscription[T]) finish(err error) {
	s.err = err
	close(s.updates)
	close(s.done)
	s.cancel()
}

// Feed is the producing end of a subscription whose updates come from the
// caller rather than from lnd: a test double, or a replay.
type Feed[T any] struct {
	sub *Subscription[T]
	ctx context.Context
}

// NewFeed returns a subscription and the feed that produces its updates.
// The goroutine that feeds it calls End exactly once: after a final update,
// or when Done is closed (the subscriber called Close, or ctx ended).
func NewFeed[T any](ctx context.Context) (*Subscription[T], *Feed[T]) {
	ctx, cancel := context.WithCancel(ctx)
	sub := newSubscription[T](cancel)
	return sub, &Feed[T]{sub: sub, ctx: ctx}
}

// Send delivers one update; false once the subscriber is gone.
func (f *Feed[T]) Send(v T) bool { return f.sub.send(f.ctx, v) }

// Done is closed once the subscriber is gone.
func (f *Feed[T]) Done() <-chan struct{} { return f.ctx.Done() }

// End finishes the subscription with err: nil after a final update, the
// reason otherwise.
func (f *Feed[T]) End(err error) { f.sub.finish(err) }

// stream is a node-wide lnd stream that a Subscription follows: open
// (re)subscribes, run delivers until ctx ends or the stream fails for
// good, resubscribing as lnd restarts, and close releases the gRPC stream.
type stream[T any] interface {
	open(ctx context.Context) error
	run(ctx context.Context, sub *Subscription[T]) error
	close()
}

// startStream opens s (retried like a call, for op) and follows it on a
// goroutine the Client owns, until ctx ends or Close.
func startStream[T any](c *Client, ctx context.Context, op string,
	s stream[T]) (*Subscription[T], error) {

	ctx, cancel := c.scope(ctx)
	if err := c.openStream(ctx, op, s.open); err != nil {
		cancel()
		return nil, err
	}

	sub := newSubscription[T](cancel)
	err := c.goOwned(func() {
		defer s.close()
		sub.finish(s.run(ctx, sub))
	})
	if err != nil {
		s.close()
		cancel()

		return nil, mapError(op, err)
	}

	return sub, nil
}
