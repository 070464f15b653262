-- keycard passkeys table, SQLite. `{table}` is the configured table name, `{name}` its bare
-- name. Times are Unix microseconds (UTC). No secret is stored: `passkey` is the credential's
-- public key, signature counter and backup state, as webauthn-rs serializes it (JSON).
CREATE TABLE IF NOT EXISTS {table} (
    user_id       TEXT    NOT NULL,
    credential_id BLOB    NOT NULL PRIMARY KEY
                          CHECK (length(credential_id) BETWEEN 1 AND 255),
    name          TEXT    NOT NULL CHECK (length(name) <= 64),     -- characters
    passkey       TEXT    NOT NULL CHECK (length(CAST(passkey AS BLOB)) <= 8192), -- bytes
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER                                          -- NULL if never used
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "{name}_user_idx" ON {table} (user_id, created_at);
