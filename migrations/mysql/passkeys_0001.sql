-- keycard passkeys table, MySQL / MariaDB. `{table}` is the configured (possibly
-- database-qualified) table name, quoted; `{name}` its bare name. Times are Unix
-- microseconds. Identifiers are binary strings, compared byte for byte. No secret is stored:
-- `passkey` is the credential's public key, signature counter and backup state, as
-- webauthn-rs serializes it (JSON).
CREATE TABLE IF NOT EXISTS {table} (
    user_id       VARBINARY(767)  NOT NULL,
    credential_id VARBINARY(255)  NOT NULL,
    name          VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, -- characters
    passkey       TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,        -- at most 8192 bytes
    created_at    BIGINT          NOT NULL,
    last_used_at  BIGINT          NULL,     -- NULL if never used
    PRIMARY KEY (credential_id),
    KEY `{name}_user_idx` (user_id, created_at)
) ENGINE = InnoDB;
