-- keycard sessions table, PostgreSQL, version 2. `amr` is how the session was authenticated:
-- keycard::AuthMethods as a small bit set (AuthMethods::bits). Sessions of version 1 get 0,
-- no method recorded.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS amr SMALLINT NOT NULL DEFAULT 0;
