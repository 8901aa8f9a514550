-- Running totals of the sender's holds, so that a create's capacity check and
-- a metrics scrape read one row instead of every hold (issue 15).
--
-- Triggers keep them, in the very statement that inserts a hold or moves its
-- state: no writer can skip them (Tx.Create, the compare-and-set UPDATE of a
-- transition, ApplyBatch, anything later), and no crash can separate a
-- transition from its delta, since a statement, its savepoint and the group
-- commit are each atomic. Store.Open recounts them once and repairs (and logs)
-- a difference, which must never happen.

-- Pending: every hold not yet final, i.e. what the LSP may still have to
-- forward. It is the capacity check's "resolved = 0 AND state NOT IN
-- ('SETTLED', 'CANCELED')": a resolved hold is always final (the CHECK of
-- 0001_holds.sql), so that is "not final".
CREATE TABLE sender_totals (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    pending_amount_msat  INTEGER NOT NULL,
    pending_count        INTEGER NOT NULL
);

-- How many holds are in each state, final ones included. One row per state
-- of the CHECK on holds.state, seeded here, so the triggers only UPDATE.
CREATE TABLE hold_state_counts (
    state  TEXT PRIMARY KEY,
    n      INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO sender_totals (id, pending_amount_msat, pending_count)
    SELECT 1, COALESCE(SUM(amount_msat), 0), COUNT(*) FROM holds
    WHERE resolved = 0 AND state NOT IN ('SETTLED', 'CANCELED');

INSERT INTO hold_state_counts (state, n)
    SELECT s.state, (SELECT COUNT(*) FROM holds WHERE holds.state = s.state)
    FROM (SELECT 'CREATED' AS state UNION ALL SELECT 'HELD'
          UNION ALL SELECT 'RELEASED' UNION ALL SELECT 'FORWARDING'
          UNION ALL SELECT 'SETTLED' UNION ALL SELECT 'CANCELED') AS s;

CREATE TRIGGER holds_totals_insert AFTER INSERT ON holds
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat + new.amount_msat,
            pending_count = pending_count + 1
        WHERE id = 1 AND new.state NOT IN ('SETTLED', 'CANCELED');
    UPDATE hold_state_counts SET n = n + 1 WHERE state = new.state;
END;

-- A FORWARDING -> FORWARDING retry changes nothing counted. Only entering
-- (or, were there such a transition, leaving) a final state moves the
-- pending total.
CREATE TRIGGER holds_totals_state AFTER UPDATE OF state ON holds
    WHEN old.state <> new.state
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat
                + (new.state NOT IN ('SETTLED', 'CANCELED')) * new.amount_msat
                - (old.state NOT IN ('SETTLED', 'CANCELED')) * old.amount_msat,
            pending_count = pending_count
                + (new.state NOT IN ('SETTLED', 'CANCELED'))
                - (old.state NOT IN ('SETTLED', 'CANCELED'))
        WHERE id = 1 AND (old.state IN ('SETTLED', 'CANCELED'))
            <> (new.state IN ('SETTLED', 'CANCELED'));
    UPDATE hold_state_counts
        SET n = n + (state = new.state) - (state = old.state)
        WHERE state IN (old.state, new.state);
END;

-- The totals assume a hold's amount never changes; nothing changes it.
CREATE TRIGGER holds_amount_fixed BEFORE UPDATE OF amount_msat ON holds
    WHEN old.amount_msat <> new.amount_msat
BEGIN
    SELECT RAISE(ABORT, 'holds.amount_msat cannot change');
END;

-- Nothing deletes holds today; a later pruning of final holds stays counted.
CREATE TRIGGER holds_totals_delete AFTER DELETE ON holds
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat - old.amount_msat,
            pending_count = pending_count - 1
        WHERE id = 1 AND old.state NOT IN ('SETTLED', 'CANCELED');
    UPDATE hold_state_counts SET n = n - 1 WHERE state = old.state;
END;
