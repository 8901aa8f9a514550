package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// errorHeader carries a request handler's failure to the requester as one
// of two codes; details stay in the responder's log.
const (
	errorHeader     = "Asynclsp-Error"
	codeRejected    = "rejected"
	codeUnavailable = "unavailable"
)

// Request sends a request of the given kind to the LSP to and returns its
// answer. Requests are not durable: on ErrRequestTimeout or
// ErrNoResponders, retry; the receiver answers a retried request with the
// same result. If ctx has no deadline, RequestTimeout applies. A remote
// handler's failure comes back as ErrRejected (do not retry) or
// ErrUnavailable (retry later).
func (c *Conn) Request(ctx context.Context, to NodeKey, kind Kind, data []byte) ([]byte, error) {
	if !to.valid() {
		return nil, fmt.Errorf("%w: recipient %s", ErrInvalidKey, to)
	}
	if err := kind.Validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	resp, err := c.nc.RequestWithContext(ctx, RequestSubject(to, c.self, kind), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("%w: nobody serves %s for LSP %s", ErrNoResponders, kind, to)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("%w: no answer to %s from LSP %s: %w", ErrRequestTimeout, kind, to, err)
	case errors.Is(err, nats.ErrConnectionClosed):
		return nil, ErrClosed
	case err != nil:
		return nil, fmt.Errorf("bus: request %s to LSP %s: %w", kind, to, err)
	}
	switch code := resp.Header.Get(errorHeader); code {
	case "":
		return resp.Data, nil
	case codeRejected:
		return nil, fmt.Errorf("%w: %s to LSP %s", ErrRejected, kind, to)
	default:
		return nil, fmt.Errorf("%w: %s to LSP %s (%s)", ErrUnavailable, kind, to, code)
	}
}

// RequestHandler answers one request from the LSP from. An error wrapping
// ErrDrop answers "rejected" and is counted; any other error answers
// "unavailable".
type RequestHandler func(ctx context.Context, from NodeKey, data []byte) ([]byte, error)

// ServeRequests answers requests of the given kind addressed to this LSP
// until ctx ends, with RequestWorkers handlers at a time; instances of one
// LSP share the requests (a queue group). On return, no handler runs.
// A handler's context outlives ctx by at most RequestTimeout, so requests
// in flight at shutdown are still answered.
func (c *Conn) ServeRequests(ctx context.Context, kind Kind, h RequestHandler) error {
	if err := kind.Validate(); err != nil {
		return err
	}
	subject := requestPrefix + c.self.String() + ".*." + string(kind)
	sub, err := c.nc.QueueSubscribeSync(subject, requestQueue)
	if err != nil {
		return fmt.Errorf("bus: subscribe %s: %w", subject, err)
	}
	c.log.Info("serving requests", "kind", kind)

	var wg sync.WaitGroup
	errs := make(chan error, c.cfg.RequestWorkers)
	for range c.cfg.RequestWorkers {
		wg.Go(func() {
			for {
				m, err := sub.NextMsgWithContext(ctx)
				if errors.Is(err, nats.ErrSlowConsumer) {
					// Requests were dropped; their senders retry.
					c.log.Warn("requests dropped: handlers too slow", "kind", kind)
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				c.serve(ctx, kind, m, h)
			}
		})
	}
	wg.Wait()
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) &&
		!errors.Is(err, nats.ErrBadSubscription) {
		c.log.Warn("unsubscribe failed", "kind", kind, "err", err)
	}
	close(errs)
	if err := <-errs; err != nil {
		if c.nc.IsClosed() {
			return ErrClosed
		}
		return fmt.Errorf("bus: serve %s: %w", kind, err)
	}
	return nil
}

// serve handles one request and answers it.
func (c *Conn) serve(ctx context.Context, kind Kind, m *nats.Msg, h RequestHandler) {
	label := kindLabel(kind)
	_, from, _, err := parseSubject(requestPrefix, m.Subject)
	if m.Reply == "" {
		c.metrics.served.WithLabelValues(label, resultDropped).Inc()
		c.metrics.drop(kind, ReasonMalformed, from)
		c.log.Warn("request without reply subject dropped", "subject", m.Subject)
		return
	}
	var data []byte
	switch {
	case err != nil:
		err = Drop(ReasonBadSubject, err)
	case c.blocked[from]:
		err = Drop(ReasonBlocked, errors.New("peer blocked by configuration"))
	default:
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
		data, err = h(hctx, from, m.Data)
		cancel()
	}
	reply := &nats.Msg{Subject: m.Reply, Data: data}
	if reason, drop := dropReason(err); drop {
		c.metrics.served.WithLabelValues(label, resultDropped).Inc()
		c.metrics.drop(kind, reason, from)
		c.log.Warn("request rejected", "from", from, "kind", kind, "reason", reason, "err", err)
		reply = &nats.Msg{Subject: m.Reply, Header: nats.Header{errorHeader: []string{codeRejected}}}
	} else if err != nil {
		c.metrics.served.WithLabelValues(label, resultFailed).Inc()
		c.log.Warn("request handler failed", "from", from, "kind", kind, "err", err)
		reply = &nats.Msg{Subject: m.Reply, Header: nats.Header{errorHeader: []string{codeUnavailable}}}
	} else {
		c.metrics.served.WithLabelValues(label, resultAnswered).Inc()
	}
	if err := c.nc.PublishMsg(reply); err != nil {
		c.log.Warn("answer not sent", "from", from, "kind", kind, "err", err)
	}
}
