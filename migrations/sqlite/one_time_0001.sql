-- keycard one-time tokens table, SQLite. `{table}` is the configured table name, `{name}` its
-- bare name. Times are Unix microseconds (UTC). No token secret is stored: `secret_hash` is
-- the SHA-256 digest of the token's secret, `binding` a digest of the account state it was
-- issued for.
CREATE TABLE IF NOT EXISTS {table} (
    id          TEXT    NOT NULL PRIMARY KEY, -- public token id, 22 base64url characters
    user_id     TEXT    NOT NULL,
    purpose     TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL,             -- 32 bytes
    binding     BLOB    NOT NULL,             -- 32 bytes
    payload     TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, purpose, created_at);
CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires_at);
