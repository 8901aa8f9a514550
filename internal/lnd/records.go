package lnd

import (
	"context"
	"fmt"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/routing/route"
)

// The node's own records, read whole: every payment, every invoice, the
// channels being opened or closed and the closed ones. What a check of
// lnd's ledgers reads after a run; asynclsp's roles never need them.

// pageSize is how many payments or invoices one call to lnd returns.
const pageSize = 500

// ListPayments returns every outgoing payment lnd recorded, succeeded,
// failed or in flight, oldest first.
func (c *Client) ListPayments(ctx context.Context) ([]Payment, error) {
	return listAll(func(offset uint64) ([]Payment, uint64, error) {
		var resp *lnrpc.ListPaymentsResponse
		err := c.do(ctx, "ListPayments", func(ctx context.Context) error {
			ctx, cl := c.lightning(ctx)
			var err error
			resp, err = cl.ListPayments(ctx, &lnrpc.ListPaymentsRequest{
				IncludeIncomplete: true, IndexOffset: offset,
				MaxPayments: pageSize,
			})

			return err
		})
		if err != nil {
			return nil, 0, err
		}
		out := make([]Payment, 0, len(resp.Payments))
		for _, p := range resp.Payments {
			pay, err := paymentFromRPC(p)
			if err != nil {
				return nil, 0, fmt.Errorf("lnd ListPayments: %w", err)
			}
			out = append(out, pay)
		}

		return out, resp.LastIndexOffset, nil
	})
}

// ListInvoices returns every invoice of the node, hold invoices included,
// in every state, oldest first.
func (c *Client) ListInvoices(ctx context.Context) ([]Invoice, error) {
	return listAll(func(offset uint64) ([]Invoice, uint64, error) {
		var resp *lnrpc.ListInvoiceResponse
		err := c.do(ctx, "ListInvoices", func(ctx context.Context) error {
			ctx, cl := c.lightning(ctx)
			var err error
			resp, err = cl.ListInvoices(ctx, &lnrpc.ListInvoiceRequest{
				IndexOffset: offset, NumMaxInvoices: pageSize,
			})

			return err
		})
		if err != nil {
			return nil, 0, err
		}
		out := make([]Invoice, 0, len(resp.Invoices))
		for _, in := range resp.Invoices {
			inv, err := invoiceFromRPC(in)
			if err != nil {
				return nil, 0, fmt.Errorf("lnd ListInvoices: %w", err)
			}
			out = append(out, inv)
		}

		return out, resp.LastIndexOffset, nil
	})
}

// listAll reads pages from fetch, each starting after the offset the
// previous one ended at, until a page comes back empty or does not move
// the offset.
func listAll[T any](fetch func(offset uint64) ([]T, uint64, error)) ([]T, error) {
	var all []T
	offset := uint64(0)
	for {
		page, last, err := fetch(offset)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) == 0 || last <= offset {
			return all, nil
		}
		offset = last
	}
}

// PendingChannels returns the node's channels that are not open yet or not
// closed yet.
func (c *Client) PendingChannels(ctx context.Context) (PendingChannels, error) {
	var resp *lnrpc.PendingChannelsResponse
	err := c.do(ctx, "PendingChannels", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.PendingChannels(ctx, &lnrpc.PendingChannelsRequest{})

		return err
	})
	if err != nil {
		return PendingChannels{}, err
	}
	out, err := pendingChannelsFromRPC(resp)
	if err != nil {
		return PendingChannels{}, fmt.Errorf("lnd PendingChannels: %w", err)
	}

	return out, nil
}

// ClosedChannels returns every channel of the node that was closed, however
// it was.
func (c *Client) ClosedChannels(ctx context.Context) ([]ClosedChannel, error) {
	var resp *lnrpc.ClosedChannelsResponse
	err := c.do(ctx, "ClosedChannels", func(ctx context.Context) error {
		ctx, cl := c.lightning(ctx)
		var err error
		resp, err = cl.ClosedChannels(ctx, &lnrpc.ClosedChannelsRequest{})

		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ClosedChannel, 0, len(resp.Channels))
	for _, ch := range resp.Channels {
		cc, err := closedChannelFromRPC(ch)
		if err != nil {
			return nil, fmt.Errorf("lnd ClosedChannels: %w", err)
		}
		out = append(out, cc)
	}

	return out, nil
}

// pendingChannelsFromRPC converts lnd's pending channels.
func pendingChannelsFromRPC(resp *lnrpc.PendingChannelsResponse) (
	PendingChannels, error) {

	var out PendingChannels
	for _, ch := range resp.PendingOpenChannels {
		pc, err := pendingChannelFromRPC(ch.Channel, "")
		if err != nil {
			return PendingChannels{}, err
		}
		out.Opening = append(out.Opening, pc)
	}
	for _, ch := range resp.WaitingCloseChannels {
		pc, err := pendingChannelFromRPC(ch.Channel, ch.ClosingTxid)
		if err != nil {
			return PendingChannels{}, err
		}
		pc.LimboBalance = ch.LimboBalance
		out.WaitingClose = append(out.WaitingClose, pc)
	}
	for _, ch := range resp.PendingForceClosingChannels {
		pc, err := pendingChannelFromRPC(ch.Channel, ch.ClosingTxid)
		if err != nil {
			return PendingChannels{}, err
		}
		pc.LimboBalance = ch.LimboBalance
		pc.PendingHTLCs = len(ch.PendingHtlcs)
		out.ForceClosing = append(out.ForceClosing, pc)
	}

	return out, nil
}

// pendingChannelFromRPC converts one of lnd's pending channels.
func pendingChannelFromRPC(ch *lnrpc.PendingChannelsResponse_PendingChannel,
	closingTxID string) (PendingChannel, error) {

	if ch == nil {
		return PendingChannel{}, fmt.Errorf("pending channel without " +
			"its channel")
	}
	remote, err := route.NewVertexFromStr(ch.RemoteNodePub)
	if err != nil {
		return PendingChannel{}, fmt.Errorf("pending channel %s: remote "+
			"pubkey: %w", ch.ChannelPoint, err)
	}

	return PendingChannel{
		ChannelPoint: ch.ChannelPoint,
		RemotePubKey: remote,
		Capacity:     ch.Capacity,
		LocalBalance: ch.LocalBalance,
		ClosingTxID:  closingTxID,
	}, nil
}

// closedChannelFromRPC converts one of lnd's closed channels.
func closedChannelFromRPC(ch *lnrpc.ChannelCloseSummary) (ClosedChannel, error) {
	remote, err := route.NewVertexFromStr(ch.RemotePubkey)
	if err != nil {
		return ClosedChannel{}, fmt.Errorf("closed channel %s: remote "+
			"pubkey: %w", ch.ChannelPoint, err)
	}

	return ClosedChannel{
		ChannelPoint:   ch.ChannelPoint,
		ChanID:         ch.ChanId,
		RemotePubKey:   remote,
		Capacity:       ch.Capacity,
		SettledBalance: ch.SettledBalance,
		CloseHeight:    ch.CloseHeight,
		ClosingTxHash:  ch.ClosingTxHash,
		CloseType:      closeTypeFromRPC(ch.CloseType),
	}, nil
}

// closeTypeFromRPC maps lnd's closure type to ours. A type added to lnd
// after v0.21 maps to CloseUnknown.
func closeTypeFromRPC(t lnrpc.ChannelCloseSummary_ClosureType) CloseType {
	switch t {
	case lnrpc.ChannelCloseSummary_COOPERATIVE_CLOSE:
		return CloseCooperative
	case lnrpc.ChannelCloseSummary_LOCAL_FORCE_CLOSE:
		return CloseLocalForce
	case lnrpc.ChannelCloseSummary_REMOTE_FORCE_CLOSE:
		return CloseRemoteForce
	case lnrpc.ChannelCloseSummary_BREACH_CLOSE:
		return CloseBreach
	case lnrpc.ChannelCloseSummary_FUNDING_CANCELED:
		return CloseFundingCanceled
	case lnrpc.ChannelCloseSummary_ABANDONED:
		return CloseAbandoned
	default:
		return CloseUnknown
	}
}
