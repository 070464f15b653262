-- keycard users table, MySQL / MariaDB, version 2. `email` now keeps the address as the user
-- typed it (trimmed): mail goes there. `email_key` is its canonical form
-- (keycard::normalize_email: trimmed, NFKC, lowercase), a binary string with the UNIQUE key
-- every lookup by email matches. Rows of version 1 stored the address trimmed and lowercased:
-- that becomes their key. `email_verified_at` is when a verification link proved the address
-- (Unix microseconds), NULL until then. The unique index on `email` goes: `email_key` is
-- the one that decides, and two unique indexes on one value let concurrent changes to one
-- address deadlock. MySQL commits each DDL statement on its own and has
-- no `ADD COLUMN IF NOT EXISTS`, so each step checks `information_schema` first and the whole
-- version can run again after an interruption.
SET @keycard_sql = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE {table} ADD COLUMN email_key VARBINARY(1024) NULL AFTER email, ADD COLUMN email_verified_at BIGINT NULL',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = {database} AND table_name = '{name}' AND column_name = 'email_key');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
UPDATE {table} SET email_key = email WHERE email_key IS NULL;
ALTER TABLE {table} MODIFY email_key VARBINARY(1024) NOT NULL;
SET @keycard_sql = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE {table} ADD UNIQUE KEY `{name}_email_uq` (email_key)',
    'DO 0')
    FROM information_schema.statistics
    WHERE table_schema = {database} AND table_name = '{name}' AND index_name = '{name}_email_uq');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
SET @keycard_sql = (SELECT IF(COUNT(*) > 0,
    'ALTER TABLE {table} DROP INDEX `{name}_email_key`',
    'DO 0')
    FROM information_schema.statistics
    WHERE table_schema = {database} AND table_name = '{name}' AND index_name = '{name}_email_key');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
