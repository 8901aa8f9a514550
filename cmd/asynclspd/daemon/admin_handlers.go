package daemon

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/lightningnetwork/lnd/routing/route"
)

// getInfo: GET /v1/admin/info.
func (a *adminAPI) getInfo(w http.ResponseWriter, r *http.Request, _ *holdstore.Token) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	httpjson.Write(w, http.StatusOK, a.info)
	return nil
}

// createToken: POST /v1/admin/tokens. The secret is in this answer only.
func (a *adminAPI) createToken(w http.ResponseWriter, r *http.Request, who *holdstore.Token) error {
	var body adminclient.CreateTokenRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	role := holdstore.TokenRole(body.Role)
	if !role.Valid() {
		return fmt.Errorf("%w: role must be %q or %q", errInvalidRequest,
			holdstore.RoleWallet, holdstore.RoleAdmin)
	}
	plain, tok, err := a.store.CreateToken(r.Context(), body.Name, role)
	if errors.Is(err, holdstore.ErrInvalid) {
		return fmt.Errorf("%w: name %q: 1 to 64 letters, digits, '.', '_' or '-', "+
			"starting with a letter or digit", errInvalidRequest, body.Name)
	}
	if err != nil {
		return err
	}
	a.log.Info("API token created", "id", tok.ID, "name", tok.Name,
		"role", tok.Role, "by", who.Name, "by_token", who.ID)
	httpjson.Write(w, http.StatusCreated, adminclient.CreatedToken{
		Token: tokenJSON(tok), Bearer: plain})
	return nil
}

// listTokens: GET /v1/admin/tokens.
func (a *adminAPI) listTokens(w http.ResponseWriter, r *http.Request, _ *holdstore.Token) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	toks, err := a.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := adminclient.TokenList{Tokens: make([]adminclient.Token, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = tokenJSON(t)
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// revokeToken: POST /v1/admin/tokens/{id}/revoke. Revoking a revoked token
// answers 200 again.
func (a *adminAPI) revokeToken(w http.ResponseWriter, r *http.Request, who *holdstore.Token) error {
	id := r.PathValue("id")
	err := a.store.RevokeToken(r.Context(), id)
	if errors.Is(err, holdstore.ErrTokenNotFound) {
		return fmt.Errorf("%w: no token with id %q", errNotFound, id)
	}
	if err != nil {
		return err
	}
	toks, err := a.store.Tokens(r.Context())
	if err != nil {
		return err
	}
	i := slices.IndexFunc(toks, func(t *holdstore.Token) bool { return t.ID == id })
	if i < 0 {
		return fmt.Errorf("token %s revoked but no longer listed", id)
	}
	a.log.Info("API token revoked", "id", id, "name", toks[i].Name,
		"by", who.Name, "by_token", who.ID)
	httpjson.Write(w, http.StatusOK, tokenJSON(toks[i]))
	return nil
}

func tokenJSON(t *holdstore.Token) adminclient.Token {
	out := adminclient.Token{ID: t.ID, Name: t.Name, Role: string(t.Role),
		CreatedAt: t.CreatedAt.UTC(), Revoked: t.Revoked()}
	if t.Revoked() {
		at := t.RevokedAt.UTC()
		out.RevokedAt = &at
	}
	return out
}

// listReceivers: GET /v1/admin/receivers?limit=&cursor=.
func (a *adminAPI) listReceivers(w http.ResponseWriter, r *http.Request, _ *holdstore.Token) error {
	q := r.URL.Query()
	if err := onlyParams(q, "limit", "cursor"); err != nil {
		return err
	}
	limit, err := pageLimit(q)
	if err != nil {
		return err
	}
	rows, next, err := a.store.ReceiverSummaries(r.Context(), a.clock.Now(), q.Get("cursor"), limit)
	if errors.Is(err, holdstore.ErrInvalid) {
		return fmt.Errorf("%w: %v", errInvalidRequest, err)
	}
	if err != nil {
		return err
	}
	out := adminclient.ReceiverPage{Receivers: make([]adminclient.Receiver, len(rows)),
		NextCursor: next}
	for i, row := range rows {
		out.Receivers[i] = adminclient.Receiver{
			NodeKey: row.NodeKey.String(), WebhookURL: row.WebhookURL,
			Invoices: adminclient.InvoiceCounts{Available: row.Available,
				Expired: row.Expired, Reserved: row.Reserved},
			PendingItems: row.Pending,
			RegisteredAt: row.RegisteredAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(),
		}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// listMailbox: GET /v1/admin/mailbox?receiver=&state=&limit=&cursor=.
func (a *adminAPI) listMailbox(w http.ResponseWriter, r *http.Request, _ *holdstore.Token) error {
	q := r.URL.Query()
	if err := onlyParams(q, "receiver", "state", "limit", "cursor"); err != nil {
		return err
	}
	f := holdstore.MailboxFilter{Cursor: q.Get("cursor")}
	var err error
	if f.Limit, err = pageLimit(q); err != nil {
		return err
	}
	if s := q.Get("receiver"); s != "" {
		k, err := onionmsg.ParseNodeKey(s)
		if err != nil {
			return fmt.Errorf("%w: receiver must be a node public key: 66 hex "+
				"characters of a compressed point", errInvalidRequest)
		}
		v := route.Vertex(k)
		f.Receiver = &v
	}
	for _, s := range q["state"] {
		if !slices.Contains(adminclient.MailboxStates, s) {
			return fmt.Errorf("%w: state %q is not one of %v", errInvalidRequest,
				s, adminclient.MailboxStates)
		}
		f.States = append(f.States, s)
	}
	rows, next, err := a.store.MailboxEntries(r.Context(), f)
	if errors.Is(err, holdstore.ErrInvalid) {
		return fmt.Errorf("%w: %v", errInvalidRequest, err)
	}
	if err != nil {
		return err
	}
	out := adminclient.MailboxPage{Items: make([]adminclient.MailboxItem, len(rows)),
		NextCursor: next}
	for i, row := range rows {
		out.Items[i] = adminclient.MailboxItem{
			SenderLSP: row.SenderLSP.String(), HoldID: hex.EncodeToString(row.HoldID[:]),
			ReceiverKey: row.ReceiverKey.String(),
			PaymentHash: hex.EncodeToString(row.PaymentHash[:]),
			AmountMsat:  row.AmountMsat, DeadlineHeight: row.DeadlineHeight,
			DeadlineTime: row.DeadlineTime.UTC(), State: row.State, Reason: row.Reason,
			Version: row.Version, Relayed: row.Relayed,
			CreatedAt: row.CreatedAt.UTC(), UpdatedAt: row.UpdatedAt.UTC(),
		}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// getStats: GET /v1/admin/stats.
func (a *adminAPI) getStats(w http.ResponseWriter, r *http.Request, _ *holdstore.Token) error {
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	ctx := r.Context()
	holds, err := a.store.CountByState(ctx)
	if err != nil {
		return err
	}
	pending, err := a.store.PendingAmountMsat(ctx)
	if err != nil {
		return err
	}
	totals, err := a.store.ReceiverTotals(ctx, a.clock.Now())
	if err != nil {
		return err
	}
	toks, err := a.store.Tokens(ctx)
	if err != nil {
		return err
	}
	out := adminclient.Stats{
		Holds: adminclient.HoldStats{ByState: map[string]int{},
			PendingAmountMsat: uint64(pending)},
		Mailbox: map[string]int{},
		Invoices: adminclient.InvoiceCounts{Available: totals.Available,
			Expired: totals.Expired, Reserved: totals.Reserved},
		Receivers: totals.Receivers,
	}
	for _, st := range holdstore.States {
		out.Holds.ByState[string(st)] = holds[st]
	}
	for _, st := range adminclient.MailboxStates {
		out.Mailbox[st] = totals.MailboxByState[st]
	}
	for _, t := range toks {
		if t.Revoked() {
			out.Tokens.Revoked++
		} else {
			out.Tokens.Active++
		}
	}
	httpjson.Write(w, http.StatusOK, out)
	return nil
}

// reannounce: POST /v1/admin/sender/reannounce. The sender role forgets
// that the receiver LSP acknowledged its HELD holds and announces them again:
// for a receiver LSP that lost what it had stored (its JetStream).
func (a *adminAPI) reannounce(w http.ResponseWriter, r *http.Request, who *holdstore.Token) error {
	if a.sender == nil {
		return fmt.Errorf("%w: this daemon does not run the sender role", errNotFound)
	}
	if err := onlyParams(r.URL.Query()); err != nil {
		return err
	}
	var body adminclient.ReannounceRequest
	if err := decodeBody(w, r, &body); err != nil {
		return err
	}
	lsp, err := onionmsg.ParseNodeKey(body.ReceiverLSP)
	if err != nil {
		return fmt.Errorf("%w: receiver_lsp must be a node public key: 66 hex "+
			"characters of a compressed point", errInvalidRequest)
	}
	n, err := a.sender.Reannounce(r.Context(), lsp)
	if err != nil {
		return err
	}
	a.log.Info("held payments to be announced again", "receiver_lsp", lsp.String(),
		"holds", n, "by", who.Name, "by_token", who.ID)
	httpjson.Write(w, http.StatusOK, adminclient.Reannounced{Reannounced: n})
	return nil
}

// onlyParams refuses query parameters other than allowed, and repeats of
// any but state: a typo never silently widens a listing.
func onlyParams(q url.Values, allowed ...string) error {
	for name, vals := range q {
		if !slices.Contains(allowed, name) {
			return fmt.Errorf("%w: unknown query parameter %q", errInvalidRequest, name)
		}
		if len(vals) > 1 && name != "state" {
			return fmt.Errorf("%w: %s may be given once", errInvalidRequest, name)
		}
	}
	return nil
}

// pageLimit reads limit: 1 to 1000, default 100.
func pageLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, fmt.Errorf("%w: limit must be an integer from 1 to 1000", errInvalidRequest)
	}
	return n, nil
}
