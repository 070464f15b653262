-- keycard sessions table, PostgreSQL. `{table}` is the configured (possibly schema-qualified)
-- table name, `{name}` its bare name. No token secret is stored: `secret_hash` is the SHA-256
-- digest of the token's secret.
CREATE TABLE IF NOT EXISTS {table} (
    id           TEXT        NOT NULL, -- public session id, 22 base64url characters
    user_id      TEXT        NOT NULL,
    secret_hash  BYTEA       NOT NULL, -- 32 bytes
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    CONSTRAINT "{name}_pkey" PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created_at);
CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires_at);
