-- keycard second factors, PostgreSQL: two tables, created together (recorded in
-- keycard_migrations under the TOTP table's name). `{table}` is the configured (possibly
-- schema-qualified) TOTP table, `{name}` its bare name; `{codes}` the recovery codes table,
-- `{codes_name}` its bare name. No plain secret is stored: `sealed_secret` is the TOTP
-- secret encrypted with the application's key, `digest` a SHA-256 digest of one recovery
-- code and its user.
CREATE TABLE IF NOT EXISTS {table} (
    user_id       TEXT        NOT NULL,
    sealed_secret BYTEA       NOT NULL, -- key id, nonce, ciphertext
    created_at    TIMESTAMPTZ NOT NULL,
    confirmed_at  TIMESTAMPTZ,          -- NULL while enrolment waits for a code
    last_step     BIGINT,               -- the last time step whose code was accepted
    CONSTRAINT "{name}_pkey" PRIMARY KEY (user_id),
    CONSTRAINT "{name}_sealed_len" CHECK (octet_length(sealed_secret) <= 255)
);
CREATE TABLE IF NOT EXISTS {codes} (
    user_id    TEXT        NOT NULL,
    digest     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT "{codes_name}_pkey" PRIMARY KEY (user_id, digest),
    CONSTRAINT "{codes_name}_digest_len" CHECK (octet_length(digest) = 32)
);
