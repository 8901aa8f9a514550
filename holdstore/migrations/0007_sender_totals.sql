-- The running total of the sender's pending holds, so that a create's
-- capacity check reads one row instead of summing every hold (issue 15).
--
-- Pending: every hold not yet final, i.e. what the LSP may still have to
-- forward. It is the capacity check's "resolved = 0 AND state NOT IN
-- ('SETTLED', 'CANCELED')": a resolved hold is always final (the CHECK of
-- 0001_holds.sql), so that is "not final".
--
-- Triggers keep it in the very statement that changes it: the INSERT of a
-- hold, and the UPDATE that moves a hold into a final state. So no write
-- path of the store (Create, Apply, ApplyPath, ApplyBatch) skips it, and no
-- crash can part a transition from its delta (a statement, its savepoint
-- and the group commit are each atomic). Store.Open recounts it once and
-- repairs (and logs) a difference, which must never happen.
--
-- Cost: SQLite codes an "UPDATE OF columns" trigger only into the UPDATEs
-- whose SET list names one of them, and a statement with a trigger keeps a
-- statement journal (modernc maps and unmaps its memory). Entering SETTLED
-- sets preimage, entering CANCELED sets failure_reason (Tx.ApplyPath; the
-- CHECKs of 0001 require both values there), and the transitions of the hot path
-- (CREATED -> HELD, HELD -> RELEASED -> FORWARDING) set neither: they carry
-- no trigger and cost what they did. A trigger on every state change, with
-- a count per state, made the group-commit benchmark (batch=100) take 1.7x
-- as long and twice the CPU; so the metrics' holds by state stay a GROUP BY
-- at scrape time, off the create path.
CREATE TABLE sender_totals (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    pending_amount_msat  INTEGER NOT NULL,
    pending_count        INTEGER NOT NULL
);

INSERT INTO sender_totals (id, pending_amount_msat, pending_count)
    SELECT 1, COALESCE(SUM(amount_msat), 0), COUNT(*) FROM holds
    WHERE resolved = 0 AND state NOT IN ('SETTLED', 'CANCELED');

CREATE TRIGGER holds_pending_insert AFTER INSERT ON holds
    WHEN new.state NOT IN ('SETTLED', 'CANCELED')
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat + new.amount_msat,
            pending_count = pending_count + 1
        WHERE id = 1;
END;

-- No transition leaves a final state; were there one, it would count again.
CREATE TRIGGER holds_pending_final AFTER UPDATE OF preimage, failure_reason ON holds
    WHEN (old.state IN ('SETTLED', 'CANCELED')) <> (new.state IN ('SETTLED', 'CANCELED'))
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat
                + (CASE WHEN new.state IN ('SETTLED', 'CANCELED') THEN -1 ELSE 1 END)
                * new.amount_msat,
            pending_count = pending_count
                + (CASE WHEN new.state IN ('SETTLED', 'CANCELED') THEN -1 ELSE 1 END)
        WHERE id = 1;
END;

-- What that trigger relies on: an UPDATE that moves a hold into a final
-- state names preimage or failure_reason. Tx.ApplyPath always does (SETTLED
-- needs the preimage, CANCELED a reason). A check on every state change
-- would be a trigger on every transition, so the rule is kept by that code,
-- checked by checkTotals after every step of the property test and every
-- kill of the crash test, and Store.Open's recount repairs and logs a miss.

-- The total assumes a hold's amount never changes; nothing changes it.
-- (Coded only into UPDATEs that set amount_msat: none.)
CREATE TRIGGER holds_amount_fixed BEFORE UPDATE OF amount_msat ON holds
    WHEN old.amount_msat <> new.amount_msat
BEGIN
    SELECT RAISE(ABORT, 'holds.amount_msat cannot change');
END;

-- Nothing deletes holds today; a later pruning of final holds stays right.
CREATE TRIGGER holds_pending_delete AFTER DELETE ON holds
    WHEN old.state NOT IN ('SETTLED', 'CANCELED')
BEGIN
    UPDATE sender_totals
        SET pending_amount_msat = pending_amount_msat - old.amount_msat,
            pending_count = pending_count - 1
        WHERE id = 1;
END;
