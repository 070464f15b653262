-- keycard sessions table, MySQL / MariaDB. `{table}` is the configured (possibly
-- database-qualified) table name, quoted; `{name}` its bare name. No token secret is stored:
-- `secret_hash` is the SHA-256 digest of the token's secret. Times are Unix microseconds.
-- Identifiers are binary strings: compared byte for byte (no case folding, no accent folding,
-- no trailing-space padding).
CREATE TABLE IF NOT EXISTS {table} (
    id           VARBINARY(64)  NOT NULL, -- public session id, 22 base64url characters
    user_id      VARBINARY(767) NOT NULL,
    secret_hash  BINARY(32)     NOT NULL, -- 32 bytes
    created_at   BIGINT         NOT NULL,
    expires_at   BIGINT         NOT NULL,
    last_seen_at BIGINT         NOT NULL,
    ip           VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    user_agent   TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    PRIMARY KEY (id),
    KEY `{name}_user_idx` (user_id, created_at),
    KEY `{name}_expires_idx` (expires_at)
) ENGINE = InnoDB;
