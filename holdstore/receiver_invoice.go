package holdstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

// ErrNoInvoice: no invoice matches (none reserved for that hold, none
// available that fits).
var ErrNoInvoice = errors.New("no such invoice")

// ReceiverInvoice is a BOLT11 invoice a receiver left in our custody.
type ReceiverInvoice struct {
	PaymentHash lntypes.Hash
	ReceiverKey route.Vertex

	// Invoice is the BOLT11 string as the receiver made it.
	Invoice string

	// AmountMsat is the invoice's fixed amount, or 0 if it has none.
	AmountMsat lnwire.MilliSatoshi
	ExpiresAt  time.Time

	// Reservation is set once the invoice is handed out, and never
	// changes after.
	Reservation *Reservation

	CreatedAt time.Time
}

// Reservation records to whom an invoice was handed out.
type Reservation struct {
	SenderLSP route.Vertex
	HoldID    ID

	// AmountMsat is what the sender LSP asked the invoice for.
	AmountMsat lnwire.MilliSatoshi
	At         time.Time
}

// InvoiceCounts is a receiver's stock of invoices.
type InvoiceCounts struct {
	// Available: not handed out, and not expired at the time asked.
	Available int

	// Expired: never handed out, and expired now.
	Expired int

	// Reserved: handed out.
	Reserved int
}

const invoiceColumns = `payment_hash, receiver_key, invoice, amount_msat,
	expires_at, sender_lsp, hold_id, reserved_msat, reserved_at, created_at`

func scanInvoice(row scanner) (*ReceiverInvoice, error) {
	var (
		inv                      ReceiverInvoice
		hash, key, lsp, hold     []byte
		expires, created         int64
		reservedMsat, reservedAt sql.NullInt64
	)
	err := row.Scan(&hash, &key, &inv.Invoice, &inv.AmountMsat, &expires,
		&lsp, &hold, &reservedMsat, &reservedAt, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoInvoice
	}
	if err != nil {
		return nil, err
	}
	copy(inv.PaymentHash[:], hash)
	copy(inv.ReceiverKey[:], key)
	inv.ExpiresAt = time.Unix(0, expires)
	inv.CreatedAt = time.Unix(0, created)
	if hold != nil {
		r := &Reservation{
			AmountMsat: lnwire.MilliSatoshi(reservedMsat.Int64),
			At:         time.Unix(0, reservedAt.Int64),
		}
		copy(r.SenderLSP[:], lsp)
		copy(r.HoldID[:], hold)
		inv.Reservation = r
	}
	return &inv, nil
}

// AddInvoice stores a new, available invoice. It returns false, and stores
// nothing, if an invoice with that payment hash was ever stored.
func (t *Tx) AddInvoice(inv *ReceiverInvoice) (bool, error) {
	if inv.Invoice == "" || inv.ExpiresAt.IsZero() {
		return false, fmt.Errorf("%w: invoice without text or expiry", ErrInvalid)
	}
	res, err := t.Exec(`INSERT INTO receiver_invoices (payment_hash,
		receiver_key, invoice, amount_msat, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (payment_hash) DO NOTHING`,
		inv.PaymentHash[:], inv.ReceiverKey[:], inv.Invoice,
		int64(inv.AmountMsat), nanos(inv.ExpiresAt), nanos(t.now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Reserved returns the invoice reserved for the sender LSP's hold, or
// ErrNoInvoice.
func (t *Tx) Reserved(senderLSP route.Vertex, hold ID) (*ReceiverInvoice, error) {
	return scanInvoice(t.QueryRow("SELECT "+invoiceColumns+
		" FROM receiver_invoices WHERE sender_lsp = ? AND hold_id = ?",
		senderLSP[:], hold[:]))
}

// ReserveFirst hands the sender LSP's hold, for reserved msat, the
// receiver's available invoice of exactly amount (0: an amountless one)
// that expires at or after minExpiry and before any other such (short-lived
// invoices go first), and returns it as reserved: the pick and the
// reservation are one statement. It fails with ErrNoInvoice if no invoice
// fits, and ErrDuplicate if the hold has an invoice already. A reserved
// invoice is never handed out again.
func (t *Tx) ReserveFirst(receiver route.Vertex, amount lnwire.MilliSatoshi,
	minExpiry time.Time, senderLSP route.Vertex, hold ID,
	reserved lnwire.MilliSatoshi) (*ReceiverInvoice, error) {

	if reserved == 0 {
		return nil, fmt.Errorf("%w: reservation for no amount", ErrInvalid)
	}
	inv, err := scanInvoice(t.QueryRow(`UPDATE receiver_invoices
		SET sender_lsp = ?, hold_id = ?, reserved_msat = ?, reserved_at = ?
		WHERE hold_id IS NULL AND payment_hash = (
			SELECT payment_hash FROM receiver_invoices
			INDEXED BY receiver_invoices_available
			WHERE receiver_key = ? AND amount_msat = ? AND hold_id IS NULL
			AND expires_at >= ? ORDER BY expires_at LIMIT 1)
		RETURNING `+invoiceColumns,
		senderLSP[:], hold[:], int64(reserved), nanos(t.now),
		receiver[:], int64(amount), nanos(minExpiry)))
	if isUnique(err) {
		return nil, fmt.Errorf("%w: hold %s of %s has an invoice already",
			ErrDuplicate, hold, senderLSP)
	}
	return inv, err
}

// HasFixed reports whether the receiver has any invoice of exactly amount
// that was never handed out, expired or not.
func (t *Tx) HasFixed(receiver route.Vertex, amount lnwire.MilliSatoshi) (bool, error) {
	var one int
	err := t.QueryRow(`SELECT 1 FROM receiver_invoices
		INDEXED BY receiver_invoices_available
		WHERE receiver_key = ? AND amount_msat = ? AND hold_id IS NULL
		LIMIT 1`, receiver[:], int64(amount)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CountAvailable counts the receiver's invoices that were never handed out
// and expire after at, up to upTo: it costs O(upTo), not O(stock).
func (t *Tx) CountAvailable(receiver route.Vertex, at time.Time, upTo int) (int, error) {
	var n int
	err := t.QueryRow(`SELECT COUNT(*) FROM (SELECT 1 FROM receiver_invoices
		INDEXED BY receiver_invoices_available
		WHERE receiver_key = ? AND hold_id IS NULL AND expires_at > ?
		LIMIT ?)`, receiver[:], nanos(at), upTo).Scan(&n)
	return n, err
}

// CountInvoices returns the receiver's stock at now.
func (s *Store) CountInvoices(ctx context.Context, receiver route.Vertex,
	now time.Time) (InvoiceCounts, error) {

	var c InvoiceCounts
	err := s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(expires_at > ?1), 0), COALESCE(SUM(expires_at <= ?1), 0)
		FROM receiver_invoices INDEXED BY receiver_invoices_available
		WHERE receiver_key = ?2 AND hold_id IS NULL`,
		nanos(now), receiver[:]).Scan(&c.Available, &c.Expired)
	if err != nil {
		return c, fmt.Errorf("count invoices of %s: %w", receiver, err)
	}
	err = s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM receiver_invoices
		INDEXED BY receiver_invoices_reserved
		WHERE receiver_key = ? AND hold_id IS NOT NULL`,
		receiver[:]).Scan(&c.Reserved)
	if err != nil {
		return c, fmt.Errorf("count invoices of %s: %w", receiver, err)
	}
	return c, nil
}

// InvoiceByHash returns the invoice with the payment hash, or ErrNoInvoice.
func (s *Store) InvoiceByHash(ctx context.Context, hash lntypes.Hash) (*ReceiverInvoice, error) {
	return scanInvoice(s.db.QueryRowContext(ctx, "SELECT "+invoiceColumns+
		" FROM receiver_invoices WHERE payment_hash = ?", hash[:]))
}
