-- keycard login throttle, SQLite. `{table}` is the configured table name, `{name}` its bare
-- name. Times are Unix microseconds (UTC).
--
-- One table holds every counter and every trusted address, one row each, named by `key`:
--   pair:<account>:<ip>     attempts for one account from one address
--   ip:<ip>                 attempts from one address, across accounts
--   account:<account>       attempts for one account from untrusted addresses
--   trusted:<account>:<ip>  an address that logged into the account (count 0)
-- `<account>` is a digest of the email (never the email itself), `<ip>` the client address
-- (IPv6: its /64), `-` without one.
CREATE TABLE IF NOT EXISTS {table} (
    key     TEXT    NOT NULL PRIMARY KEY,
    count   INTEGER NOT NULL, -- attempts counted in the window; 0 for trusted addresses
    ends_at INTEGER NOT NULL  -- when the window ends, or the trust lapses
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS "{name}_ends_idx" ON {table} (ends_at);
