-- LSPS5 (bLIP-55) webhooks. A receiver keeps up to a maximum number of
-- webhooks, each under an app_name, insert-or-replace (55:178-186), and a
-- peer that speaks LSPS0 over BOLT8 becomes a receiver without the HTTP
-- registration, so without a bearer token. Times are unix nanoseconds, keys
-- 33-byte points, as in 0002.

-- receivers is rebuilt: token_hash may be NULL (no token was ever issued:
-- the receiver came over LSPS0, where BOLT8 authenticates it), and
-- webhook_url moves to receiver_webhooks under the app_name 'default', where
-- the HTTP registration's webhook_url goes from now on. receiver_invoices
-- refers to receivers by name; its foreign key is deferred to the commit,
-- by which time every row is back in the new table.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE receivers_0005 AS SELECT * FROM receivers;

DROP TABLE receivers;

CREATE TABLE receivers (
    node_key       BLOB PRIMARY KEY CHECK (length(node_key) = 33),
    -- The SHA-256 of its bearer token; NULL until it registers over HTTP
    -- (answers a challenge). Registering again replaces it.
    token_hash     BLOB CHECK (token_hash IS NULL OR length(token_hash) = 32),
    -- The invoices_low webhook: 0 stock is fine, 1 a notice is owed, 2 it
    -- was sent. Back to 0 once an upload lifts the stock over the threshold.
    invoices_low   INTEGER NOT NULL DEFAULT 0 CHECK (invoices_low IN (0, 1, 2)),
    registered_at  INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

INSERT INTO receivers (node_key, token_hash, invoices_low, registered_at, updated_at)
    SELECT node_key, token_hash, invoices_low, registered_at, updated_at
    FROM receivers_0005;

-- A receiver's webhooks, one per app_name (at most 64 bytes of UTF-8; the
-- URL at most 1024 ASCII characters: 55:123-146). Kept until the receiver
-- removes it (55:195-201 asks for at least 7 days after its last channel).
CREATE TABLE receiver_webhooks (
    receiver_key     BLOB NOT NULL REFERENCES receivers (node_key),
    app_name         TEXT NOT NULL CHECK (length(CAST(app_name AS BLOB)) <= 64),
    url              TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 1024),
    -- Bumped whenever url changes, so that the end of a webhook_registered
    -- delivery clears registered_owed only for the URL it went to.
    version          INTEGER NOT NULL DEFAULT 1,
    -- 1 while lsps5.webhook_registered is owed to this webhook: set by a
    -- set_webhook that added it or changed its URL, cleared once that
    -- notification was delivered or given up. Until then no other
    -- notification goes to the receiver's webhooks (55:235-236).
    registered_owed  INTEGER NOT NULL DEFAULT 1 CHECK (registered_owed IN (0, 1)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    -- When it was last set or notified.
    last_used        INTEGER NOT NULL,
    PRIMARY KEY (receiver_key, app_name)
) WITHOUT ROWID;

-- The old single webhook_url becomes the app 'default'. It was in use
-- already: no webhook_registered is owed to it.
INSERT INTO receiver_webhooks (receiver_key, app_name, url, registered_owed,
        created_at, updated_at, last_used)
    SELECT node_key, 'default', webhook_url, 0, registered_at, updated_at, updated_at
    FROM receivers_0005 WHERE webhook_url <> '';

DROP TABLE receivers_0005;

-- The webhooks that still owe lsps5.webhook_registered, for the sender.
CREATE INDEX receiver_webhooks_owed ON receiver_webhooks (receiver_key)
    WHERE registered_owed = 1;

-- When a notification of each method last went to a receiver's webhooks:
-- the per-method cooldown (55:620-645), kept here so that a restart does not
-- forget it. A receiver that comes online (its node connects, or makes an
-- LSPS0 request) has its rows deleted: the cooldown starts afresh.
CREATE TABLE receiver_notified (
    receiver_key  BLOB NOT NULL REFERENCES receivers (node_key),
    method        TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    PRIMARY KEY (receiver_key, method)
) WITHOUT ROWID;
