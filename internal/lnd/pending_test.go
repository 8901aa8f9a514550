package lnd

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lntypes"
	"google.golang.org/grpc"
)

// fakeInvoiceLister answers ListInvoices with resp and records the
// requests.
type fakeInvoiceLister struct {
	lnrpc.LightningClient

	mu   sync.Mutex
	reqs []*lnrpc.ListInvoiceRequest
	resp *lnrpc.ListInvoiceResponse
}

func (f *fakeInvoiceLister) RawClientWithMacAuth(ctx context.Context) (
	context.Context, time.Duration, lnrpc.LightningClient) {

	return ctx, time.Second, f
}

func (f *fakeInvoiceLister) ListInvoices(_ context.Context,
	req *lnrpc.ListInvoiceRequest, _ ...grpc.CallOption) (
	*lnrpc.ListInvoiceResponse, error) {

	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)

	return f.resp, nil
}

// TestListPendingInvoices: one ListInvoices call per page, pending only,
// after the given add index; invoices come with their add index and their
// HTLCs' circuits. A zero limit is refused without a call.
func TestListPendingInvoices(t *testing.T) {
	h1, h2 := lntypes.Hash{1}, lntypes.Hash{2}
	fake := &fakeInvoiceLister{resp: &lnrpc.ListInvoiceResponse{
		Invoices: []*lnrpc.Invoice{
			{RHash: h1[:], State: lnrpc.Invoice_OPEN, AddIndex: 11},
			{RHash: h2[:], State: lnrpc.Invoice_ACCEPTED, AddIndex: 14,
				ValueMsat: 5000, AmtPaidMsat: 5000,
				Htlcs: []*lnrpc.InvoiceHTLC{
					{ChanId: 7, HtlcIndex: 3, AmtMsat: 2000,
						State: lnrpc.InvoiceHTLCState_ACCEPTED},
					{ChanId: 6, HtlcIndex: 9, AmtMsat: 3000,
						State: lnrpc.InvoiceHTLCState_ACCEPTED},
				}},
		},
		FirstIndexOffset: 11, LastIndexOffset: 14,
	}}
	c := testClient(time.Minute)
	c.lightningSvc = fake
	defer c.Close()

	_, err := c.ListPendingInvoices(context.Background(), 10, 0)
	if !errors.Is(err, ErrInvalidRequest) || len(fake.reqs) != 0 {
		t.Fatalf("limit 0: %v after %d calls", err, len(fake.reqs))
	}

	page, err := c.ListPendingInvoices(context.Background(), 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	req := fake.reqs[0]
	if len(fake.reqs) != 1 || !req.PendingOnly || req.IndexOffset != 10 ||
		req.NumMaxInvoices != 2 || req.Reversed {

		t.Fatalf("requests %v", fake.reqs)
	}
	if len(page) != 2 || page[0].Hash != h1 || page[0].AddIndex != 11 ||
		page[0].State != InvoiceOpen || page[1].AddIndex != 14 ||
		page[1].State != InvoiceAccepted {

		t.Fatalf("page %+v", page)
	}
	var circuits []CircuitKey
	for _, h := range page[1].HTLCs {
		circuits = append(circuits, h.Circuit())
	}
	if len(circuits) != 2 || circuits[0] != (CircuitKey{6, 9}) ||
		circuits[1] != (CircuitKey{7, 3}) {

		t.Fatalf("circuits %v", circuits)
	}
}
