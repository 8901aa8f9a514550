-- The operator's mailbox listing across receivers, newest first, a page at
-- a time by (created_at, sender_lsp, hold_id): without this index it reads
-- every item.
CREATE INDEX receiver_mailbox_created
    ON receiver_mailbox (created_at, sender_lsp, hold_id);
