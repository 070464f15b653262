-- keycard one-time tokens table, MySQL / MariaDB. `{table}` is the configured (possibly
-- database-qualified) table name, quoted; `{name}` its bare name. No token secret is stored:
-- `secret_hash` is the SHA-256 digest of the token's secret, `binding` a digest of the account
-- state it was issued for. Times are Unix microseconds. Identifiers are binary strings,
-- compared byte for byte.
CREATE TABLE IF NOT EXISTS {table} (
    id          VARBINARY(64)  NOT NULL, -- public token id, 22 base64url characters
    user_id     VARBINARY(767) NOT NULL,
    purpose     VARBINARY(64)  NOT NULL,
    secret_hash BINARY(32)     NOT NULL,
    binding     BINARY(32)     NOT NULL,
    payload     TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    created_at  BIGINT         NOT NULL,
    expires_at  BIGINT         NOT NULL,
    PRIMARY KEY (id),
    KEY `{name}_user_idx` (user_id, purpose, created_at),
    KEY `{name}_expires_idx` (expires_at)
) ENGINE = InnoDB;
