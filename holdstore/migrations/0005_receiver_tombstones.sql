-- A sender LSP's final word (settled or canceled) on a hold whose
-- held_htlc_available this LSP has not stored yet: after a crash the two may
-- arrive in either order. The held message, when it comes, creates its
-- mailbox item in this final state, never as pending. Kept only for a hold
-- this LSP reserved an invoice for, so no member LSP can fill the table, and
-- pruned once no held message can still be on its way (the inbound stream's
-- retention).
CREATE TABLE receiver_tombstones (
    sender_lsp    BLOB NOT NULL CHECK (length(sender_lsp) = 33),
    hold_id       BLOB NOT NULL CHECK (length(hold_id) = 16),
    payment_hash  BLOB NOT NULL CHECK (length(payment_hash) = 32),
    state         TEXT NOT NULL CHECK (state IN ('settled', 'canceled')),
    reason        TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (sender_lsp, hold_id)
) WITHOUT ROWID;

CREATE INDEX receiver_tombstones_age ON receiver_tombstones (created_at);
