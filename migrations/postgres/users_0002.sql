-- keycard users table, PostgreSQL, version 2. `email` now keeps the address as the user typed
-- it (trimmed): mail goes there. `email_key` is its canonical form (keycard::normalize_email:
-- trimmed, NFKC, lowercase), the UNIQUE key every lookup by email matches. Rows of version 1
-- stored the address trimmed and lowercased: that becomes their key. `email_verified_at` is
-- when a verification link proved the address, NULL until then. The unique constraint on
-- `email` goes: `email_key` is the one that decides, and two unique indexes on one value let
-- concurrent changes to one address deadlock.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS email_key TEXT;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS email_verified_at TIMESTAMPTZ;
UPDATE {table} SET email_key = email WHERE email_key IS NULL;
ALTER TABLE {table} ALTER COLUMN email_key SET NOT NULL;
ALTER TABLE {table} ADD CONSTRAINT "{name}_email_uq" UNIQUE (email_key);
ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}_email_key";
