-- keycard sessions table, PostgreSQL, version 3. API tokens: `token_name` and `token_scopes`
-- (the space-separated scopes) are both set for an API token and both NULL for an interactive
-- session (a login), which every session of versions 1 and 2 is.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS token_name TEXT;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS token_scopes TEXT;
