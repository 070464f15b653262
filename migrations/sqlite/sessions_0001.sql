-- keycard sessions table, SQLite. `{table}` is the configured table name, `{name}` its bare
-- name. Times are Unix microseconds (UTC). No token secret is stored: `secret_hash` is the
-- SHA-256 digest of the token's secret.
CREATE TABLE IF NOT EXISTS {table} (
    id           TEXT    NOT NULL PRIMARY KEY, -- public session id, 22 base64url characters
    user_id      TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL,             -- 32 bytes
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    ip           TEXT,
    user_agent   TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created_at);
CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires_at);
