-- keycard users table, PostgreSQL. `email` is stored normalized (trimmed, lowercase).
CREATE TABLE IF NOT EXISTS {table} (
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,             -- PHC string, `$argon2id$...`
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT '',
    CONSTRAINT "{name}_pkey" PRIMARY KEY (id),
    CONSTRAINT "{name}_email_key" UNIQUE (email)
);
