-- Running counts of each receiver's pending mailbox items, by sender LSP, so
-- that admitting a held_htlc_available reads a row or two instead of counting
-- the receiver's pending items (issue 15: the count took 2.9 ms with 10,000
-- pending against 0.15 ms with 100, on the receiver role's single writer).
--
-- As with sender_totals (0007), triggers keep the counts in the very
-- statement that changes them: the INSERT of an item, an UPDATE that moves
-- it into or out of 'pending', a DELETE. Store.Open recounts them once and
-- repairs (and logs) a difference, which must never happen. The UPDATE
-- trigger is coded only into UPDATEs that set state (a change of state, an
-- expiry), not into the flags' (relayed, woken, warned).
CREATE TABLE receiver_pending_counts (
    receiver_key  BLOB NOT NULL,
    sender_lsp    BLOB NOT NULL,
    pending       INTEGER NOT NULL,
    PRIMARY KEY (receiver_key, sender_lsp)
) WITHOUT ROWID;

INSERT INTO receiver_pending_counts (receiver_key, sender_lsp, pending)
    SELECT receiver_key, sender_lsp, COUNT(*) FROM receiver_mailbox
    WHERE state = 'pending' GROUP BY receiver_key, sender_lsp;

CREATE TRIGGER receiver_mailbox_pending_insert AFTER INSERT ON receiver_mailbox
    WHEN new.state = 'pending'
BEGIN
    INSERT INTO receiver_pending_counts (receiver_key, sender_lsp, pending)
        VALUES (new.receiver_key, new.sender_lsp, 1)
        ON CONFLICT (receiver_key, sender_lsp) DO UPDATE SET pending = pending + 1;
END;

CREATE TRIGGER receiver_mailbox_pending_state AFTER UPDATE OF state ON receiver_mailbox
    WHEN (old.state = 'pending') <> (new.state = 'pending')
BEGIN
    INSERT INTO receiver_pending_counts (receiver_key, sender_lsp, pending)
        VALUES (new.receiver_key, new.sender_lsp,
                CASE WHEN new.state = 'pending' THEN 1 ELSE -1 END)
        ON CONFLICT (receiver_key, sender_lsp)
        DO UPDATE SET pending = pending + excluded.pending;
END;

CREATE TRIGGER receiver_mailbox_pending_delete AFTER DELETE ON receiver_mailbox
    WHEN old.state = 'pending'
BEGIN
    UPDATE receiver_pending_counts SET pending = pending - 1
        WHERE receiver_key = old.receiver_key AND sender_lsp = old.sender_lsp;
END;

-- The counts assume an item's receiver and sender LSP never change; nothing
-- changes them.
CREATE TRIGGER receiver_mailbox_keys_fixed
    BEFORE UPDATE OF receiver_key, sender_lsp ON receiver_mailbox
    WHEN old.receiver_key <> new.receiver_key OR old.sender_lsp <> new.sender_lsp
BEGIN
    SELECT RAISE(ABORT, 'receiver_mailbox.receiver_key and sender_lsp cannot change');
END;
