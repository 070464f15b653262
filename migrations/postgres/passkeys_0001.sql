-- keycard passkeys table, PostgreSQL. `{table}` is the configured (possibly schema-qualified)
-- table name, `{name}` its bare name. No secret is stored: `passkey` is the credential's
-- public key, signature counter and backup state, as webauthn-rs serializes it (JSON).
CREATE TABLE IF NOT EXISTS {table} (
    user_id       TEXT        NOT NULL,
    credential_id BYTEA       NOT NULL,
    name          TEXT        NOT NULL,
    passkey       TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,          -- NULL if never used
    CONSTRAINT "{name}_pkey" PRIMARY KEY (credential_id),
    CONSTRAINT "{name}_id_len" CHECK (octet_length(credential_id) BETWEEN 1 AND 255),
    CONSTRAINT "{name}_name_len" CHECK (char_length(name) <= 64),
    CONSTRAINT "{name}_passkey_len" CHECK (octet_length(passkey) <= 8192)
);
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created_at);
