-- keycard users table, SQLite. `email` is stored normalized (trimmed, lowercase).
CREATE TABLE IF NOT EXISTS {table} (
    id            TEXT NOT NULL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,             -- PHC string, `$argon2id$...`
    first_name    TEXT NOT NULL DEFAULT '',
    last_name     TEXT NOT NULL DEFAULT ''
);
