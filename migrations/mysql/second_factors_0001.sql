-- keycard second factors, MySQL / MariaDB: two tables, created together (recorded in
-- keycard_migrations under the TOTP table's name). `{table}` is the configured (possibly
-- database-qualified) TOTP table, quoted, `{name}` its bare name; `{codes}` the recovery
-- codes table. Times are Unix microseconds. Identifiers are binary strings, compared byte for
-- byte. No plain secret is stored: `sealed_secret` is the TOTP secret encrypted with the
-- application's key, `digest` a SHA-256 digest of one recovery code and its user.
CREATE TABLE IF NOT EXISTS {table} (
    user_id       VARBINARY(767) NOT NULL,
    sealed_secret VARBINARY(255) NOT NULL, -- key id, nonce, ciphertext
    created_at    BIGINT         NOT NULL,
    confirmed_at  BIGINT         NULL,     -- NULL while enrolment waits for a code
    last_step     BIGINT         NULL,     -- the last time step whose code was accepted
    PRIMARY KEY (user_id)
) ENGINE = InnoDB;
CREATE TABLE IF NOT EXISTS {codes} (
    user_id    VARBINARY(767) NOT NULL,
    digest     BINARY(32)     NOT NULL,
    created_at BIGINT         NOT NULL,
    PRIMARY KEY (user_id, digest)
) ENGINE = InnoDB;
