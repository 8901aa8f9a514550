package senderlsp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// maxIdempotencyKey is the longest Idempotency-Key accepted, as
// PaymentRequest.RequestKey allows.
const maxIdempotencyKey = 128

// createPayment: POST /v1/payments. 201 with a new payment; 200 with the
// payment an earlier request with the same Idempotency-Key made. Every
// refusal goes through refuse, which counts it.
func (a *API) createPayment(w http.ResponseWriter, r *http.Request, c *caller) {
	var body createPaymentJSON
	if err := a.decodeBody(w, r, &body); err != nil {
		a.refuse(w, r, err, "")
		return
	}
	req, err := body.paymentRequest()
	if err != nil {
		a.refuse(w, r, err, "")
		return
	}
	req.Owner = c.name
	if req.RequestKey, err = idempotencyKey(r); err != nil {
		a.refuse(w, r, err, "")
		return
	}
	select {
	case <-a.m.Running():
	default:
		a.refuse(w, r, apiErr(codeUnavailable, "the sender LSP is starting"), "")
		return
	}

	ctx := r.Context()
	if req.RequestKey != "" {
		// Creates with one key run one at a time, so the second sees
		// what the first made, hold invoice included.
		unlock, err := a.creating.lock(ctx, c.name+"\x00"+req.RequestKey)
		if err != nil {
			a.refuse(w, r, err, "")
			return
		}
		defer unlock()
		h, err := a.m.store.GetByRequestKey(ctx, c.name, req.RequestKey)
		switch {
		case err == nil:
			if err := sameRequest(h, &req); err != nil {
				a.refuse(w, r, err, h.ID.String())
				return
			}
			if err := createUnfinished(h); err != nil {
				a.refuse(w, r, err, h.ID.String())
				return
			}
			httpjson.Write(w, http.StatusOK, toPaymentJSON(h))
			return
		case !errors.Is(err, holdstore.ErrNotFound):
			a.refuse(w, r, err, "")
			return
		}
	}
	// A create runs to its end even if the client leaves: cut short, it
	// would leave a hold canceled for nothing, which a retry with the same
	// key would then get back.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CreateTimeout)
	defer cancel()
	h, err := a.m.CreatePayment(cctx, req)
	a.outages.observe(req.ReceiverLSP, err)
	if err != nil {
		a.refuse(w, r, err, "")
		return
	}
	a.log.Info("payment created through the API", "hold", h.ID.String(),
		"by", c.name, "token", c.tokenID)
	w.Header().Set("Location", "/v1/payments/"+h.ID.String())
	httpjson.Write(w, http.StatusCreated, toPaymentJSON(h))
}

// paymentRequest checks the body's form; the Manager checks the rest.
func (b *createPaymentJSON) paymentRequest() (PaymentRequest, error) {
	var req PaymentRequest
	var err error
	if req.ReceiverKey, err = parseKey("receiver_key", b.ReceiverKey); err != nil {
		return req, err
	}
	if req.ReceiverLSP, err = parseKey("receiver_lsp", b.ReceiverLSP); err != nil {
		return req, err
	}
	if b.SenderNode != "" {
		k, err := parseKey("sender_node", b.SenderNode)
		if err != nil {
			return req, err
		}
		req.SenderNode = &k
	}
	if b.AmountMsat == 0 {
		return req, apiErr(codeInvalidRequest, "amount_msat must be positive")
	}
	req.AmountMsat = lnwire.MilliSatoshi(b.AmountMsat)
	if b.MaxHoldSeconds > math.MaxInt64/uint64(time.Second) {
		return req, apiErr(codeInvalidRequest, "max_hold_seconds is out of range")
	}
	req.MaxHoldTime = time.Duration(b.MaxHoldSeconds) * time.Second
	req.RetryPolicy = holdstore.RetryPolicy(b.RetryPolicy)
	if req.RetryPolicy != "" && !req.RetryPolicy.Valid() {
		return req, apiErr(codeInvalidRequest, fmt.Sprintf(
			"retry_policy must be %q or %q", holdstore.RetryPatient, holdstore.RetryFastFail))
	}
	return req, nil
}

func parseKey(field, s string) (onionmsg.NodeKey, error) {
	if s == "" {
		return onionmsg.NodeKey{}, apiErr(codeInvalidRequest, field+" is required")
	}
	k, err := onionmsg.ParseNodeKey(s)
	if err != nil {
		return k, apiErr(codeInvalidRequest, field+
			" must be a node public key: 66 hex characters of a compressed point")
	}
	return k, nil
}

// idempotencyKey reads the Idempotency-Key header: 1 to 128 printable
// ASCII characters, or absent.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	key := vals[0]
	bad := len(vals) > 1 || key == "" || len(key) > maxIdempotencyKey
	for i := 0; i < len(key) && !bad; i++ {
		bad = key[i] < 0x21 || key[i] > 0x7e
	}
	if bad {
		return "", apiErr(codeInvalidRequest, fmt.Sprintf("Idempotency-Key must be "+
			"one header of 1 to %d printable ASCII characters", maxIdempotencyKey))
	}
	return key, nil
}

// sameRequest refuses a retry whose body asks for a different payment than
// the one its idempotency key made.
func sameRequest(h *holdstore.Hold, req *PaymentRequest) error {
	policy := req.RetryPolicy
	if policy == "" {
		policy = holdstore.RetryPatient
	}
	if h.ReceiverKey != route.Vertex(req.ReceiverKey) ||
		h.ReceiverLSP != route.Vertex(req.ReceiverLSP) ||
		h.AmountMsat != req.AmountMsat || h.RetryPolicy != policy {
		return apiErr(codeInvalidRequest, "this Idempotency-Key was used "+
			"for a different payment")
	}
	return nil
}

// getPayment: GET /v1/payments/{id}. Another wallet's payment is not found.
func (a *API) getPayment(w http.ResponseWriter, r *http.Request, c *caller) {
	h, err := a.visiblePayment(r, c)
	if err != nil {
		a.fail(w, r, err, r.PathValue("id"))
		return
	}
	httpjson.Write(w, http.StatusOK, toPaymentJSON(h))
}

// cancelPayment: POST /v1/payments/{id}/cancel. Canceling a canceled
// payment answers 200 again.
func (a *API) cancelPayment(w http.ResponseWriter, r *http.Request, c *caller) {
	h, err := a.visiblePayment(r, c)
	if err != nil {
		a.fail(w, r, err, r.PathValue("id"))
		return
	}
	id := h.ID.String()
	if err := a.m.Cancel(r.Context(), h.ID, c.cancelReason()); err != nil {
		a.fail(w, r, err, id)
		return
	}
	if h, err = a.m.Payment(r.Context(), h.ID); err != nil {
		a.fail(w, r, err, id)
		return
	}
	a.log.Info("payment canceled through the API", "hold", id,
		"by", c.name, "role", c.role, "token", c.tokenID, "reason", h.Reason)
	httpjson.Write(w, http.StatusOK, toPaymentJSON(h))
}

// visiblePayment reads the payment of the path's id, if the caller may see
// it; for a wallet, another wallet's payment does not exist.
func (a *API) visiblePayment(r *http.Request, c *caller) (*holdstore.Hold, error) {
	id, err := holdstore.ParseID(r.PathValue("id"))
	if err != nil {
		return nil, errNotFound
	}
	h, err := a.m.Payment(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !c.sees(h) {
		return nil, errNotFound
	}
	return h, nil
}

// listPayments: GET /v1/payments, newest first, a page at a time.
func (a *API) listPayments(w http.ResponseWriter, r *http.Request, c *caller) {
	f, err := listFilter(r.URL.Query(), c)
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	page, err := a.m.Payments(r.Context(), f)
	if errors.Is(err, holdstore.ErrInvalid) {
		// The only input List checks itself is the opaque cursor.
		err = apiErr(codeInvalidRequest, "cursor is malformed")
	}
	if err != nil {
		a.fail(w, r, err, "")
		return
	}
	out := pageJSON{Payments: make([]*paymentJSON, len(page.Holds)), NextCursor: page.Next}
	for i, h := range page.Holds {
		out.Payments[i] = toPaymentJSON(h)
	}
	httpjson.Write(w, http.StatusOK, out)
}

// listFilter reads the listing's query parameters; unknown ones are an
// error, so a typo never silently widens a listing.
func listFilter(q url.Values, c *caller) (holdstore.Filter, error) {
	var f holdstore.Filter
	for name, vals := range q {
		switch name {
		case "state":
			for _, v := range vals {
				st := holdstore.State(strings.ToUpper(v))
				if !st.Valid() {
					return f, apiErr(codeInvalidRequest, fmt.Sprintf(
						"state %q is not one of %v", v, holdstore.States))
				}
				f.States = append(f.States, st)
			}
			continue
		case "receiver", "created_after", "created_before", "limit", "cursor", "owner":
		default:
			return f, apiErr(codeInvalidRequest, fmt.Sprintf("unknown query parameter %q", name))
		}
		if len(vals) != 1 {
			return f, apiErr(codeInvalidRequest, fmt.Sprintf("%s may be given once", name))
		}
		v := vals[0]
		var err error
		switch name {
		case "receiver":
			var k onionmsg.NodeKey
			if k, err = parseKey("receiver", v); err == nil {
				vk := route.Vertex(k)
				f.ReceiverKey = &vk
			}
		case "created_after":
			f.CreatedAfter, err = parseTime(name, v)
		case "created_before":
			f.CreatedBefore, err = parseTime(name, v)
		case "limit":
			f.Limit, err = strconv.Atoi(v)
			if err != nil || f.Limit < 1 || f.Limit > 1000 {
				err = apiErr(codeInvalidRequest, "limit must be an integer from 1 to 1000")
			}
		case "cursor":
			f.Cursor = v
		case "owner":
			f.Owner = v
		}
		if err != nil {
			return f, err
		}
	}
	if !c.admin() {
		if f.Owner != "" && f.Owner != c.name {
			return f, apiErr(codeForbidden, "a wallet token lists only its own payments")
		}
		f.Owner = c.name
	}
	return f, nil
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, apiErr(codeInvalidRequest, field+" must be an RFC 3339 time")
	}
	return t, nil
}
