-- keycard login throttle, MySQL / MariaDB. `{table}` is the configured (possibly
-- database-qualified) table name, quoted; `{name}` its bare name.
--
-- One table holds every counter and every trusted address, one row each, named by `key`:
--   pair:<account>:<ip>        attempts for one account from one address
--   ip:<ip>                    attempts from one address, across accounts
--   account:<account>          attempts for one account from untrusted addresses
--   account_trusted:<account>  attempts for one account from addresses trusted for it
--   trusted:<account>:<ip>     an address that logged into the account (count 0)
--   rate:<bucket>:<digest>     events counted by `hit`
-- A counter is live while count > 0 and ends_at is after the caller's `now`; a trusted
-- address while ends_at is. Times are Unix microseconds. Every step is one short InnoDB
-- transaction that locks the rows it reads (see `keycard::mysql::MysqlThrottle`).
CREATE TABLE IF NOT EXISTS {table} (
    `key`   VARBINARY(512) NOT NULL,
    `count` BIGINT         NOT NULL, -- attempts counted in the window; 0 for trusted addresses
    ends_at BIGINT         NOT NULL, -- when the window ends, or the trust lapses
    PRIMARY KEY (`key`),
    KEY `{name}_ends_idx` (ends_at)
) ENGINE = InnoDB;
