-- keycard second factors, SQLite: two tables, created together (recorded in
-- keycard_migrations under the TOTP table's name). `{table}` is the configured TOTP table,
-- `{name}` its bare name; `{codes}` the recovery codes table. Times are Unix microseconds
-- (UTC). No plain secret is stored: `sealed_secret` is the TOTP secret encrypted with the
-- application's key, `digest` a SHA-256 digest of one recovery code and its user.
CREATE TABLE IF NOT EXISTS {table} (
    user_id       TEXT    NOT NULL PRIMARY KEY,
    sealed_secret BLOB    NOT NULL CHECK (length(sealed_secret) <= 255), -- key id, nonce, ciphertext
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,          -- NULL while enrolment waits for a code
    last_step     INTEGER           -- the last time step whose code was accepted
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS {codes} (
    user_id    TEXT    NOT NULL,
    digest     BLOB    NOT NULL CHECK (length(digest) = 32),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, digest)
) WITHOUT ROWID;
