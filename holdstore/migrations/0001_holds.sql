-- Holds of the sender LSP: one row per hold invoice, its current state, and
-- everything needed to resume it after a restart.
CREATE TABLE holds (
    id                       BLOB PRIMARY KEY CHECK (length(id) = 16),
    payment_hash             BLOB NOT NULL UNIQUE CHECK (length(payment_hash) = 32),
    -- The wallet backend that asked for the payment, and its idempotency key.
    owner                    TEXT NOT NULL DEFAULT '',
    request_key              TEXT,
    amount_msat              INTEGER NOT NULL CHECK (amount_msat > 0),
    fee_msat                 INTEGER NOT NULL CHECK (fee_msat >= 0),
    receiver_key             BLOB NOT NULL CHECK (length(receiver_key) = 33),
    receiver_lsp             BLOB NOT NULL CHECK (length(receiver_lsp) = 33),
    receiver_invoice         TEXT NOT NULL,
    receiver_invoice_expiry  INTEGER NOT NULL,
    -- The invoice's own amount; 0 for an amountless invoice.
    receiver_invoice_amount_msat INTEGER NOT NULL DEFAULT 0,
    hold_invoice             TEXT NOT NULL DEFAULT '',
    cltv_delta               INTEGER NOT NULL,
    retry_policy             TEXT NOT NULL,
    release_secret           BLOB NOT NULL CHECK (length(release_secret) = 32),
    -- Known once lnd accepts the incoming HTLCs (state HELD).
    incoming_expiry          INTEGER NOT NULL DEFAULT 0,
    deadline_height          INTEGER NOT NULL DEFAULT 0,
    -- Set at creation: the earliest of the receiver invoice's expiry and the
    -- maximum hold time, in unix nanoseconds.
    deadline_time            INTEGER NOT NULL,
    state                    TEXT NOT NULL,
    failure_reason           TEXT NOT NULL DEFAULT '',
    attempts                 INTEGER NOT NULL DEFAULT 0,
    preimage                 BLOB CHECK (preimage IS NULL OR length(preimage) = 32),
    outbound_fee_msat        INTEGER NOT NULL DEFAULT 0,
    -- 1 once lnd has done what the final state asks (invoice settled or
    -- canceled); recovery resumes every row where it is 0.
    resolved                 INTEGER NOT NULL DEFAULT 0,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL,
    CHECK (state IN ('CREATED', 'HELD', 'RELEASED', 'FORWARDING', 'SETTLED', 'CANCELED')),
    CHECK (state <> 'SETTLED' OR preimage IS NOT NULL),
    CHECK (state <> 'CANCELED' OR failure_reason <> ''),
    CHECK (resolved = 0 OR state IN ('SETTLED', 'CANCELED'))
);

-- A retried create from the same wallet backend finds the hold it made.
CREATE UNIQUE INDEX holds_request_key ON holds (owner, request_key)
    WHERE request_key IS NOT NULL;

-- Recovery and the deadline watcher only ever look at unresolved holds: keep
-- those indexes small by leaving the (many) finished holds out of them.
CREATE INDEX holds_unresolved ON holds (created_at) WHERE resolved = 0;
CREATE INDEX holds_due_height ON holds (deadline_height)
    WHERE resolved = 0 AND deadline_height > 0;
CREATE INDEX holds_due_time ON holds (deadline_time) WHERE resolved = 0;

-- Listings: newest first, optionally by state or owner.
CREATE INDEX holds_state_created ON holds (state, created_at);
CREATE INDEX holds_owner_created ON holds (owner, created_at);

-- The history of every hold and the store-wide event log in one table: each
-- transition appends one row. seq is assigned inside the writing transaction,
-- so committed rows have a gap-free, increasing sequence a subscriber can
-- resume from.
CREATE TABLE hold_events (
    seq         INTEGER PRIMARY KEY,
    hold_id     BLOB NOT NULL REFERENCES holds (id),
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    final       INTEGER NOT NULL CHECK (final IN (0, 1)),
    at          INTEGER NOT NULL
);

CREATE INDEX hold_events_hold ON hold_events (hold_id, seq);

-- Exactly one final event per hold, enforced by the database itself.
CREATE UNIQUE INDEX hold_events_one_final ON hold_events (hold_id) WHERE final = 1;
