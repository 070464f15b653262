-- keycard one-time tokens table, PostgreSQL. `{table}` is the configured (possibly
-- schema-qualified) table name, `{name}` its bare name. No token secret is stored:
-- `secret_hash` is the SHA-256 digest of the token's secret, `binding` a digest of the account
-- state it was issued for.
CREATE TABLE IF NOT EXISTS {table} (
    id          TEXT        NOT NULL, -- public token id, 22 base64url characters
    user_id     TEXT        NOT NULL,
    purpose     TEXT        NOT NULL,
    secret_hash BYTEA       NOT NULL, -- 32 bytes
    binding     BYTEA       NOT NULL, -- 32 bytes
    payload     TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT "{name}_pkey" PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, purpose, created_at);
CREATE INDEX IF NOT EXISTS "{name}_expires_idx" ON {table} (expires_at);
