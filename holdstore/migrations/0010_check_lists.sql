-- The state CHECKs of holds and receiver_mailbox named the six states in an
-- IN list. SQLite codes an IN list of more than two constants as a temporary
-- b-tree, built again each time the CHECK runs, which is every UPDATE that
-- sets a state: every transition (issue 15). A chain of comparisons tests
-- the same without it.
--
-- A CHECK changes only with the table's CREATE statement. The new one tests
-- exactly what the old one did, so no row can fail it, and the statement is
-- rewritten in place: SQLite's procedure for changes that leave every row
-- valid (https://sqlite.org/lang_altertable.html#otheralter). The runner
-- bumps the schema version and checks the file after it (migrate.go).
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''CREATED'', ''HELD'', ''RELEASED'', ''FORWARDING'', ''SETTLED'', ''CANCELED''))',
    'CHECK (state = ''CREATED'' OR state = ''HELD'' OR state = ''RELEASED''
        OR state = ''FORWARDING'' OR state = ''SETTLED'' OR state = ''CANCELED'')')
WHERE type = 'table' AND name = 'holds';

UPDATE sqlite_schema SET sql = replace(sql,
    'CHECK (state IN (''pending'', ''released'', ''settled'', ''canceled'', ''expired'', ''refused''))',
    'CHECK (state = ''pending'' OR state = ''released'' OR state = ''settled''
        OR state = ''canceled'' OR state = ''expired'' OR state = ''refused'')')
WHERE type = 'table' AND name = 'receiver_mailbox';

PRAGMA writable_schema = OFF;
