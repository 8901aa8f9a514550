package holdstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lntypes"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/routing/route"
)

func vertex(b byte) route.Vertex {
	var v route.Vertex
	v[0], v[1] = 0x02, b
	return v
}

// registered stores a receiver and returns its key.
func registered(t testing.TB, s *Store, b byte) route.Vertex {
	t.Helper()
	key := vertex(b)
	err := s.Update(context.Background(), func(tx *Tx) error {
		return tx.PutReceiver(key, sha256.Sum256([]byte{b}), "")
	})
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func invoiceOf(key route.Vertex, n byte, amt lnwire.MilliSatoshi, expires time.Time) *ReceiverInvoice {
	return &ReceiverInvoice{
		PaymentHash: lntypes.Hash{key[1], n},
		ReceiverKey: key,
		Invoice:     "lnbcrt1invoice",
		AmountMsat:  amt,
		ExpiresAt:   expires,
	}
}

func addInvoices(t testing.TB, s *Store, invs ...*ReceiverInvoice) {
	t.Helper()
	err := s.Update(context.Background(), func(tx *Tx) error {
		for _, inv := range invs {
			ok, err := tx.AddInvoice(inv)
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("duplicate")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReceiverRegistrationRotatesToken(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	r, err := s.Receiver(ctx, key)
	if err != nil || r.TokenHash != sha256.Sum256([]byte{1}) || !r.HasToken {
		t.Fatalf("receiver %+v, %v", r, err)
	}
	if hooks, err := s.Webhooks(ctx, key); err != nil || len(hooks) != 0 {
		t.Fatalf("webhooks of a receiver registered without one: %v, %v", hooks, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutReceiver(key, sha256.Sum256([]byte("new")), "https://w.example/hook")
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ = s.Receiver(ctx, key)
	if r.TokenHash != sha256.Sum256([]byte("new")) {
		t.Fatalf("after re-registering: %+v", r)
	}
	// The registration's webhook is the app "default", owed webhook_registered.
	hooks, err := s.Webhooks(ctx, key)
	if err != nil || len(hooks) != 1 || hooks[0].AppName != DefaultAppName ||
		hooks[0].URL != "https://w.example/hook" || !hooks[0].RegisteredOwed {
		t.Fatalf("webhooks after re-registering: %+v, %v", hooks, err)
	}
	if _, err := s.Receiver(ctx, vertex(9)); !errors.Is(err, ErrUnknownReceiver) {
		t.Fatalf("unknown receiver: %v", err)
	}
}

func TestChallengeUsedOnce(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	nonce := [32]byte{7}
	use := func() error {
		return s.Update(ctx, func(tx *Tx) error {
			return tx.UseChallenge(nonce, testStart.Add(time.Minute))
		})
	}
	if err := use(); err != nil {
		t.Fatal(err)
	}
	if err := use(); !errors.Is(err, ErrChallengeUsed) {
		t.Fatalf("second use: %v", err)
	}
	// Pruned only once expired.
	var pruned int64
	prune := func() {
		err := s.Update(ctx, func(tx *Tx) (err error) {
			pruned, err = tx.PruneChallenges(clk.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	prune()
	if pruned != 0 {
		t.Fatalf("pruned %d live challenges", pruned)
	}
	clk.SetTime(testStart.Add(2 * time.Minute))
	prune()
	if pruned != 1 {
		t.Fatalf("pruned %d expired challenges, want 1", pruned)
	}
}

func TestInvoicesAddedOnceAndPickedByExpiry(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	late := invoiceOf(key, 1, 0, testStart.Add(48*time.Hour))
	early := invoiceOf(key, 2, 0, testStart.Add(25*time.Hour))
	fixed := invoiceOf(key, 3, 5000, testStart.Add(30*time.Hour))
	addInvoices(t, s, late, early, fixed)

	lsp := vertex(0xa)
	err := s.Update(ctx, func(tx *Tx) error {
		again := *late
		again.Invoice = "lnbcrt1other"
		if ok, err := tx.AddInvoice(&again); ok || err != nil {
			t.Errorf("duplicate hash: added=%v err=%v", ok, err)
		}
		if n, err := tx.CountAvailable(key, testStart, 2); n != 2 || err != nil {
			t.Errorf("CountAvailable up to 2: %d, %v", n, err)
		}
		if n, err := tx.CountAvailable(key, testStart.Add(26*time.Hour), 10); n != 2 || err != nil {
			t.Errorf("CountAvailable after 26h: %d, %v", n, err)
		}
		if _, err := tx.ReserveFirst(key, 4000, testStart, lsp, ID{1}, 4000); !errors.Is(err, ErrNoInvoice) {
			t.Errorf("fixed 4000: %v", err)
		}
		if has, err := tx.HasFixed(key, 5000); !has || err != nil {
			t.Errorf("HasFixed(5000) = %v, %v", has, err)
		}
		// Amountless lasting 26h: the 48h one, though the 25h one is
		// first otherwise.
		got, err := tx.ReserveFirst(key, 0, testStart.Add(26*time.Hour), lsp, ID{1}, 1000)
		if err != nil || got.PaymentHash != late.PaymentHash ||
			got.Reservation == nil || got.Reservation.HoldID != (ID{1}) {
			t.Errorf("amountless after 26h: %+v, %v", got, err)
		}
		got, err = tx.ReserveFirst(key, 0, testStart.Add(24*time.Hour), lsp, ID{2}, 1000)
		if err != nil || got.PaymentHash != early.PaymentHash {
			t.Errorf("first amountless: %+v, %v", got, err)
		}
		if _, err := tx.ReserveFirst(key, 0, testStart, lsp, ID{3}, 1000); !errors.Is(err, ErrNoInvoice) {
			t.Errorf("none left: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CountInvoices(ctx, key, testStart.Add(31*time.Hour))
	if err != nil || c != (InvoiceCounts{Expired: 1, Reserved: 2}) {
		t.Fatalf("counts %+v, %v", c, err)
	}
}

func TestReservationIsForever(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	inv := invoiceOf(key, 1, 0, testStart.Add(48*time.Hour))
	other := invoiceOf(key, 2, 0, testStart.Add(49*time.Hour))
	addInvoices(t, s, inv, other)
	lspA, lspB := vertex(0xa), vertex(0xb)
	reserve := func(lsp route.Vertex, hold ID) error {
		return s.Update(ctx, func(tx *Tx) error {
			_, err := tx.ReserveFirst(key, 0, testStart, lsp, hold, 1000)
			return err
		})
	}
	if err := reserve(lspA, ID{1}); err != nil {
		t.Fatal(err)
	}
	if err := reserve(lspA, ID{1}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second invoice for one hold: %v", err)
	}
	if err := reserve(lspB, ID{2}); err != nil {
		t.Fatal(err)
	}
	if err := reserve(lspB, ID{3}); !errors.Is(err, ErrNoInvoice) {
		t.Fatalf("third reservation of two invoices: %v", err)
	}
	// Below the code, the database refuses to move or lift a reservation,
	// or to forget an invoice.
	for _, q := range []string{
		"UPDATE receiver_invoices SET hold_id = NULL, sender_lsp = NULL, reserved_at = NULL, reserved_msat = NULL",
		"UPDATE receiver_invoices SET sender_lsp = x'03' || substr(sender_lsp, 2) WHERE hold_id IS NOT NULL",
		"DELETE FROM receiver_invoices",
	} {
		err := s.Update(ctx, func(tx *Tx) error { _, err := tx.Exec(q); return err })
		if err == nil {
			t.Fatalf("%s: the database allowed it", q)
		}
	}
	err := s.Update(ctx, func(tx *Tx) error {
		got, err := tx.Reserved(lspA, ID{1})
		if err != nil || got.PaymentHash != inv.PaymentHash ||
			got.Reservation.SenderLSP != lspA || got.Reservation.AmountMsat != 1000 {
			t.Errorf("reserved: %+v, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.CountInvoices(ctx, key, testStart)
	if c != (InvoiceCounts{Reserved: 2}) {
		t.Fatalf("counts %+v", c)
	}
}

// Many writers reserve concurrently through the group commit: each invoice
// goes to exactly one of them.
func TestConcurrentReservations(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	const invoices, writers = 40, 100
	for i := range invoices {
		addInvoices(t, s, invoiceOf(key, byte(i), 0, testStart.Add(48*time.Hour)))
	}
	var (
		mu  sync.Mutex
		got = map[lntypes.Hash]int{}
		wg  sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			var hash lntypes.Hash
			err := s.Update(ctx, func(tx *Tx) error {
				inv, err := tx.ReserveFirst(key, 0, testStart, vertex(byte(w)), ID{byte(w)}, 1000)
				if err == nil {
					hash = inv.PaymentHash
				}
				return err
			})
			switch {
			case errors.Is(err, ErrNoInvoice):
			case err != nil:
				t.Error(err)
			default:
				mu.Lock()
				got[hash]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != invoices {
		t.Fatalf("%d invoices handed out, want %d", len(got), invoices)
	}
	for h, n := range got {
		if n != 1 {
			t.Fatalf("invoice %s handed out %d times", h, n)
		}
	}
}

func heldItem(inv *ReceiverInvoice, lsp route.Vertex, hold ID) *MailboxItem {
	return &MailboxItem{
		SenderLSP: lsp, HoldID: hold, ReceiverKey: inv.ReceiverKey,
		PaymentHash: inv.PaymentHash, AmountMsat: 1000,
		DeadlineHeight: 500, DeadlineTime: testStart.Add(time.Hour),
		ReleaseSecret: [32]byte{9}, State: MailboxPending,
	}
}

func TestMailboxItemMustMatchItsReservation(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	inv := invoiceOf(key, 1, 0, testStart.Add(48*time.Hour))
	free := invoiceOf(key, 2, 0, testStart.Add(49*time.Hour))
	addInvoices(t, s, inv, free)
	lsp := vertex(0xa)
	add := func(it *MailboxItem) error {
		return s.Update(ctx, func(tx *Tx) error { return tx.AddMailboxItem(it) })
	}
	if err := s.Update(ctx, func(tx *Tx) error {
		_, err := tx.ReserveFirst(key, 0, testStart.Add(48*time.Hour), lsp, ID{1}, 1000)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for name, it := range map[string]*MailboxItem{
		"another sender LSP": heldItem(inv, vertex(0xb), ID{1}),
		"another hold":       heldItem(inv, lsp, ID{2}),
		"an unreserved hash": heldItem(free, lsp, ID{1}),
	} {
		if err := add(it); err == nil {
			t.Fatalf("%s: stored", name)
		}
	}
	if err := add(heldItem(inv, lsp, ID{1})); err != nil {
		t.Fatal(err)
	}
	if err := add(heldItem(inv, lsp, ID{1})); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second add: %v", err)
	}
}

func TestMailboxChangesAndExpiry(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	lsp := vertex(0xa)
	var items []*MailboxItem
	for i := range 3 {
		inv := invoiceOf(key, byte(i), 0, testStart.Add(48*time.Hour))
		addInvoices(t, s, inv)
		it := heldItem(inv, lsp, ID{byte(i)})
		it.DeadlineTime = testStart.Add(time.Duration(i+1) * time.Hour)
		it.DeadlineHeight = uint32(500 + i)
		items = append(items, it)
		err := s.Update(ctx, func(tx *Tx) error {
			if _, err := tx.ReserveFirst(key, 0, testStart, lsp, it.HoldID, 1000); err != nil {
				return err
			}
			return tx.AddMailboxItem(it)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(ctx, func(tx *Tx) error {
		n, err := tx.CountPending(key, &lsp)
		if err != nil || n != 3 {
			t.Errorf("pending %d, %v", n, err)
		}
		release := []byte{1, 2, 3}
		err = tx.ChangeMailboxItem(MailboxChange{SenderLSP: lsp, HoldID: ID{0},
			From: MailboxPending, To: MailboxReleased, Release: release})
		if err != nil {
			return err
		}
		err = tx.ChangeMailboxItem(MailboxChange{SenderLSP: lsp, HoldID: ID{0},
			From: MailboxPending, To: MailboxReleased, Release: release})
		if !errors.Is(err, ErrStaleTransition) {
			t.Errorf("stale change: %v", err)
		}
		err = tx.ChangeMailboxItem(MailboxChange{SenderLSP: lsp, HoldID: ID{7},
			From: MailboxPending, To: MailboxReleased})
		if !errors.Is(err, ErrItemNotFound) {
			t.Errorf("change of a missing item: %v", err)
		}
		return tx.MarkRelayed(lsp, ID{0}, release)
	})
	if err != nil {
		t.Fatal(err)
	}
	it, _ := s.MailboxItem(ctx, lsp, ID{0})
	if it.State != MailboxReleased || it.Version != 2 || !it.Relayed {
		t.Fatalf("released item: %+v", it)
	}
	// Height 501 expires item 1; 90 minutes expire nothing more (item 2
	// is due at 3h).
	clk.SetTime(testStart.Add(90 * time.Minute))
	var due []*MailboxItem
	err = s.Update(ctx, func(tx *Tx) (err error) {
		due, err = tx.ExpireDue(clk.Now(), 501, "deadline_passed")
		return err
	})
	if err != nil || len(due) != 1 || due[0].HoldID != (ID{1}) ||
		due[0].State != MailboxExpired {
		t.Fatalf("expired %+v, %v", due, err)
	}
	pending, err := s.PendingItems(ctx, key, clk.Now(), 10)
	if err != nil || len(pending) != 1 || pending[0].HoldID != (ID{2}) {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	soon, err := s.ExpiringSoon(ctx, clk.Now().Add(2*time.Hour), 0)
	if err != nil || len(soon) != 1 {
		t.Fatalf("expiring soon %+v, %v", soon, err)
	}
	wakes, err := s.WakesOwed(ctx)
	if err != nil || len(wakes) != 1 || wakes[0].Items != 1 {
		t.Fatalf("wakes %+v, %v", wakes, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		if err := tx.MarkWoken(key, wakes[0].Newest); err != nil {
			return err
		}
		return tx.MarkWarned(soon)
	})
	if err != nil {
		t.Fatal(err)
	}
	wakes, _ = s.WakesOwed(ctx)
	soon, _ = s.ExpiringSoon(ctx, clk.Now().Add(2*time.Hour), 0)
	if len(wakes) != 0 || len(soon) != 0 {
		t.Fatalf("after marking: wakes %v, soon %v", wakes, soon)
	}
}

// The mailbox table, written out independently of the code's: every pair.
func TestMailboxTransitionTable(t *testing.T) {
	legal := map[[2]MailboxState]bool{
		{MailboxPending, MailboxPending}: true, {MailboxPending, MailboxReleased}: true,
		{MailboxPending, MailboxExpired}: true, {MailboxPending, MailboxSettled}: true,
		{MailboxPending, MailboxCanceled}: true,
		{MailboxReleased, MailboxPending}: true, {MailboxReleased, MailboxSettled}: true,
		{MailboxReleased, MailboxCanceled}: true,
		{MailboxExpired, MailboxReleased}:  true, {MailboxExpired, MailboxSettled}: true,
		{MailboxExpired, MailboxCanceled}: true,
	}
	for _, from := range MailboxStates {
		for _, to := range MailboxStates {
			if got := MailboxLegal(from, to); got != legal[[2]MailboxState{from, to}] {
				t.Errorf("MailboxLegal(%s, %s) = %v", from, to, got)
			}
		}
	}
	// The store refuses an illegal edge before touching the row.
	s, _ := openTest(t)
	ctx := context.Background()
	key := registered(t, s, 1)
	inv := invoiceOf(key, 1, 0, testStart.Add(48*time.Hour))
	addInvoices(t, s, inv)
	lsp := vertex(0xa)
	if err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.ReserveFirst(key, 0, testStart, lsp, ID{1}, 1000); err != nil {
			return err
		}
		return tx.AddMailboxItem(heldItem(inv, lsp, ID{1}))
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Update(ctx, func(tx *Tx) error {
		return tx.ChangeMailboxItem(MailboxChange{SenderLSP: lsp, HoldID: ID{1},
			From: MailboxPending, To: MailboxRefused})
	})
	if !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("pending -> refused: err = %v", err)
	}
	if it, _ := s.MailboxItem(ctx, lsp, ID{1}); it.State != MailboxPending || it.Version != 1 {
		t.Fatalf("an illegal change touched the item: %s v%d", it.State, it.Version)
	}
}
