-- When the receiver LSP acknowledged a HELD hold's held_htlc_available (the
-- bus's PubAck: the message is stored in its work queue), in unix
-- nanoseconds; NULL until then (issue 15).
--
-- The sender's announcer sends only the HELD holds without it, after a
-- restart too: re-announcing all 10,000 holds of a busy LSP at every start
-- was a burst of messages the receiver LSPs had already stored. A hold
-- leaves the index when it leaves HELD, so a late announcement is never
-- looked for.
ALTER TABLE holds ADD COLUMN announced_at INTEGER;

CREATE INDEX holds_unannounced ON holds (created_at, id)
    WHERE state = 'HELD' AND announced_at IS NULL;
