-- The receiver LSP role: registered receivers, the invoices they left in our
-- custody, and their mailboxes of held payments. Times are unix nanoseconds,
-- keys 33-byte compressed points, as in 0001.

-- A receiver that proved it holds its node key. Only the SHA-256 of its
-- bearer token is kept; registering again replaces it.
CREATE TABLE receivers (
    node_key       BLOB PRIMARY KEY CHECK (length(node_key) = 33),
    token_hash     BLOB NOT NULL CHECK (length(token_hash) = 32),
    webhook_url    TEXT NOT NULL DEFAULT '',
    -- The invoices_low webhook: 0 stock is fine, 1 a notice is owed, 2 it
    -- was sent. Back to 0 once an upload lifts the stock over the threshold.
    invoices_low   INTEGER NOT NULL DEFAULT 0 CHECK (invoices_low IN (0, 1, 2)),
    registered_at  INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Registration challenges already answered, kept until they expire so that a
-- captured answer cannot be replayed.
CREATE TABLE receiver_challenges (
    nonce       BLOB PRIMARY KEY CHECK (length(nonce) = 32),
    expires_at  INTEGER NOT NULL
);

CREATE INDEX receiver_challenges_expiry ON receiver_challenges (expires_at);

-- The invoices a receiver made and uploaded. An invoice is available while
-- hold_id is NULL, and reserved for one (sender LSP, hold) forever after: it
-- is handed out at most once (invariant 8). Rows are never deleted, so a
-- payment hash is accepted only once, ever.
CREATE TABLE receiver_invoices (
    payment_hash     BLOB PRIMARY KEY CHECK (length(payment_hash) = 32),
    receiver_key     BLOB NOT NULL REFERENCES receivers (node_key),
    invoice          TEXT NOT NULL,
    -- 0 for an amountless invoice.
    amount_msat      INTEGER NOT NULL CHECK (amount_msat >= 0),
    expires_at       INTEGER NOT NULL,
    sender_lsp       BLOB CHECK (sender_lsp IS NULL OR length(sender_lsp) = 33),
    hold_id          BLOB CHECK (hold_id IS NULL OR length(hold_id) = 16),
    -- The amount the sender LSP asked for when it reserved the invoice.
    reserved_msat    INTEGER,
    reserved_at      INTEGER,
    created_at       INTEGER NOT NULL,
    CHECK ((hold_id IS NULL) = (sender_lsp IS NULL)
       AND (hold_id IS NULL) = (reserved_at IS NULL)
       AND (hold_id IS NULL) = (reserved_msat IS NULL)),
    CHECK (reserved_msat IS NULL OR reserved_msat > 0)
);

-- A retried invoice_request finds its reservation; a second reservation for
-- the same hold is refused by the database.
CREATE UNIQUE INDEX receiver_invoices_reservation
    ON receiver_invoices (sender_lsp, hold_id) WHERE hold_id IS NOT NULL;

-- Picking an invoice: by receiver, amount (0 for amountless) and expiry,
-- among the available ones only.
CREATE INDEX receiver_invoices_available
    ON receiver_invoices (receiver_key, amount_msat, expires_at)
    WHERE hold_id IS NULL;

CREATE INDEX receiver_invoices_reserved
    ON receiver_invoices (receiver_key) WHERE hold_id IS NOT NULL;

-- The target of the mailbox's foreign key: a mailbox item must name the
-- invoice reserved for its very (receiver, sender LSP, hold).
CREATE UNIQUE INDEX receiver_invoices_binding
    ON receiver_invoices (payment_hash, receiver_key, sender_lsp, hold_id);

-- Invariant 8 a second time, below the code: a reservation is never changed
-- or lifted once made.
CREATE TRIGGER receiver_invoices_reserve_once
    BEFORE UPDATE OF sender_lsp, hold_id, reserved_msat, reserved_at
    ON receiver_invoices
    WHEN OLD.hold_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'invoice already handed out');
END;

CREATE TRIGGER receiver_invoices_keep
    BEFORE DELETE ON receiver_invoices
BEGIN
    SELECT RAISE(ABORT, 'receiver invoices are never deleted');
END;

-- A receiver's mailbox: one row per held_htlc_available, keyed as the sender
-- LSP names its hold.
CREATE TABLE receiver_mailbox (
    sender_lsp       BLOB NOT NULL CHECK (length(sender_lsp) = 33),
    hold_id          BLOB NOT NULL CHECK (length(hold_id) = 16),
    receiver_key     BLOB NOT NULL,
    payment_hash     BLOB NOT NULL UNIQUE,
    amount_msat      INTEGER NOT NULL CHECK (amount_msat > 0),
    deadline_height  INTEGER NOT NULL,
    deadline_time    INTEGER NOT NULL,
    release_secret   BLOB NOT NULL CHECK (length(release_secret) = 32),
    state            TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    -- Bumped on every change, for long-polling readers.
    version          INTEGER NOT NULL DEFAULT 1,
    -- The receiver's last release (its TLV bytes) and whether it reached
    -- the bus; unrelayed releases are sent again.
    release          BLOB,
    relayed          INTEGER NOT NULL DEFAULT 0 CHECK (relayed IN (0, 1)),
    -- Webhooks done: payment_incoming (woken) and expiry_soon (warned).
    woken            INTEGER NOT NULL DEFAULT 0 CHECK (woken IN (0, 1)),
    warned           INTEGER NOT NULL DEFAULT 0 CHECK (warned IN (0, 1)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (sender_lsp, hold_id),
    FOREIGN KEY (payment_hash, receiver_key, sender_lsp, hold_id)
        REFERENCES receiver_invoices (payment_hash, receiver_key, sender_lsp, hold_id),
    CHECK (state IN ('pending', 'released', 'settled', 'canceled', 'expired', 'refused')),
    CHECK (state NOT IN ('canceled', 'refused') OR reason <> ''),
    CHECK (state <> 'released' OR release IS NOT NULL)
);

-- Limits count pending items per receiver and per (receiver, sender LSP);
-- listings read them newest first.
CREATE INDEX receiver_mailbox_pending
    ON receiver_mailbox (receiver_key, sender_lsp, created_at) WHERE state = 'pending';

-- The sweeper's lookups: due items, webhooks owed, releases to relay.
CREATE INDEX receiver_mailbox_due_time
    ON receiver_mailbox (deadline_time) WHERE state = 'pending';
CREATE INDEX receiver_mailbox_due_height
    ON receiver_mailbox (deadline_height) WHERE state = 'pending';
CREATE INDEX receiver_mailbox_unwoken
    ON receiver_mailbox (receiver_key) WHERE state = 'pending' AND woken = 0;
CREATE INDEX receiver_mailbox_unrelayed
    ON receiver_mailbox (updated_at) WHERE state = 'released' AND relayed = 0;
