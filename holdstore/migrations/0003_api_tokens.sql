-- Bearer tokens of the sender LSP's HTTP API. A token is "<id>.<secret>"; it
-- is shown once when it is made, and only the SHA-256 of its secret is kept.
-- name is who the token acts for: a wallet token's payments are the holds
-- whose owner is its name, so a wallet backend keeps its payments when its
-- token is rotated (a new token with the same name, the old one revoked).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY CHECK (length(id) = 16),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role         TEXT NOT NULL CHECK (role IN ('wallet', 'admin')),
    secret_hash  BLOB NOT NULL CHECK (length(secret_hash) = 32),
    created_at   INTEGER NOT NULL,
    -- Unix nanoseconds of the revocation; NULL while the token is valid.
    revoked_at   INTEGER
);

CREATE INDEX api_tokens_name ON api_tokens (name);

-- A token never changes once made, except to be revoked, once: a revoked
-- token cannot come back, and no update can swap a token's secret or role.
CREATE TRIGGER api_tokens_revoke_only BEFORE UPDATE ON api_tokens
WHEN OLD.revoked_at IS NOT NULL
    OR NEW.revoked_at IS NULL
    OR NEW.id IS NOT OLD.id
    OR NEW.name IS NOT OLD.name
    OR NEW.role IS NOT OLD.role
    OR NEW.secret_hash IS NOT OLD.secret_hash
    OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'api tokens can only be revoked, once');
END;

-- Tokens are never deleted: a revoked token's row says who it was.
CREATE TRIGGER api_tokens_keep BEFORE DELETE ON api_tokens
BEGIN
    SELECT RAISE(ABORT, 'api tokens are revoked, not deleted');
END;
