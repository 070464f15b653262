-- keycard users table, SQLite, version 2. `email` now keeps the address as the user typed it
-- (trimmed): mail goes there. `email_key` is its canonical form (keycard::normalize_email:
-- trimmed, NFKC, lowercase), the UNIQUE key every lookup by email matches. Rows of version 1
-- stored the address trimmed and lowercased: that becomes their key. `email_verified_at` is
-- when a verification link proved the address (Unix microseconds), NULL until then.
ALTER TABLE {table} ADD COLUMN email_key TEXT;
ALTER TABLE {table} ADD COLUMN email_verified_at INTEGER;
UPDATE {table} SET email_key = email WHERE email_key IS NULL;
CREATE UNIQUE INDEX IF NOT EXISTS "{name}_email_uq" ON {table} (email_key);
