-- keycard login throttle, PostgreSQL. `{table}` is the configured (possibly schema-qualified)
-- table name, `{name}` its bare name, `{schema}` its quoted schema and a dot (or nothing).
--
-- One table holds every counter and every trusted address, one row each, named by `key`:
--   pair:<account>:<ip>     attempts for one account from one address
--   ip:<ip>                 attempts from one address, across accounts
--   account:<account>       attempts for one account from untrusted addresses
--   trusted:<account>:<ip>  an address that logged into the account (count 0)
-- `<account>` is a digest of the email (never the email itself), `<ip>` the client address
-- (IPv6: its /64), `-` without one. A counter is live while count > 0 and ends_at is after
-- the caller's `now`; a trusted address while ends_at is.
CREATE TABLE IF NOT EXISTS {table} (
    key     TEXT        NOT NULL,
    count   BIGINT      NOT NULL, -- attempts counted in the window; 0 for trusted addresses
    ends_at TIMESTAMPTZ NOT NULL, -- when the window ends, or the trust lapses
    CONSTRAINT "{name}_pkey" PRIMARY KEY (key)
);
CREATE INDEX IF NOT EXISTS "{name}_ends_idx" ON {table} (ends_at);

-- Reserve: one call is one atomic step. `p_keys` are the attempt's counters in check order
-- ((account, IP), IP, account), with their limit kinds (1, 2, 3), maximums and the end of a
-- window opening at `p_now`. The account's counter is skipped when `p_trusted` names a live
-- trusted address. The counters' rows are created if missing and locked in key order (so
-- concurrent calls never deadlock) by one upsert; then the limits are checked, and either
-- nothing is counted (refused: the kind and window end of the refusing counter whose window
-- ends last, the first in check order on a tie) or every counter is (allowed).
CREATE OR REPLACE FUNCTION {schema}"{name}_reserve"(
    p_now TIMESTAMPTZ,
    p_trusted TEXT,
    p_keys TEXT[],
    p_kinds SMALLINT[],
    p_max BIGINT[],
    p_ends TIMESTAMPTZ[],
    OUT o_allowed BOOLEAN,
    OUT o_account_counted BOOLEAN,
    OUT o_refused_kind SMALLINT,
    OUT o_refused_until TIMESTAMPTZ
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_locked BIGINT;
BEGIN
    o_account_counted := NOT EXISTS (
        SELECT 1 FROM {table} t WHERE t.key = p_trusted AND t.ends_at > p_now
    );
    -- Lock every counter, creating missing ones (count 0: not live). The no-op update takes
    -- the row lock and sees the latest committed row, so nothing can change or delete it
    -- until this transaction ends.
    WITH locked AS (
        INSERT INTO {table} AS t (key, count, ends_at)
        SELECT c.k, 0, p_now
        FROM unnest(p_keys, p_kinds) AS c (k, kind)
        WHERE o_account_counted OR c.kind <> 3
        ORDER BY c.k
        ON CONFLICT (key) DO UPDATE SET count = t.count
        RETURNING 1
    )
    SELECT count(*) INTO v_locked FROM locked;

    SELECT c.kind, t.ends_at INTO o_refused_kind, o_refused_until
    FROM unnest(p_keys, p_kinds, p_max) WITH ORDINALITY AS c (k, kind, max, ord)
    JOIN {table} t ON t.key = c.k
    WHERE (o_account_counted OR c.kind <> 3)
      AND t.count > 0 AND t.ends_at > p_now AND t.count >= c.max
    ORDER BY t.ends_at DESC, c.ord
    LIMIT 1;
    IF FOUND THEN
        o_allowed := false;
        RETURN;
    END IF;

    UPDATE {table} t SET
        count = CASE WHEN t.count > 0 AND t.ends_at > p_now THEN t.count + 1 ELSE 1 END,
        ends_at = CASE WHEN t.count > 0 AND t.ends_at > p_now THEN t.ends_at ELSE c.fresh END
    FROM unnest(p_keys, p_kinds, p_ends) AS c (k, kind, fresh)
    WHERE t.key = c.k AND (o_account_counted OR c.kind <> 3);
    o_allowed := true;
END
$fn$;

-- Record a success: forget the account's failures (`p_forget`: its (account, IP) and account
-- counters), take one back from the IP counter (`p_ip`, NULL without an address) and trust
-- the address until `p_trusted_until` (`p_trusted` NULL: no trust). Rows are locked in key
-- order first.
CREATE OR REPLACE FUNCTION {schema}"{name}_record_success"(
    p_forget TEXT[],
    p_ip TEXT,
    p_trusted TEXT,
    p_trusted_until TIMESTAMPTZ
)
RETURNS VOID
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM 1 FROM {table} t
    WHERE t.key = ANY (p_forget || p_ip || p_trusted)
    ORDER BY t.key
    FOR UPDATE;
    DELETE FROM {table} t WHERE t.key = ANY (p_forget);
    UPDATE {table} t SET count = t.count - 1 WHERE t.key = p_ip AND t.count > 0;
    IF p_trusted IS NOT NULL THEN
        INSERT INTO {table} AS t (key, count, ends_at) VALUES (p_trusted, 0, p_trusted_until)
        ON CONFLICT (key) DO UPDATE SET count = 0, ends_at = EXCLUDED.ends_at;
    END IF;
END
$fn$;

-- Release: take one back from each counter a reservation counted (never below zero), rows
-- locked in key order first. Returns how many counters it found.
CREATE OR REPLACE FUNCTION {schema}"{name}_release"(p_keys TEXT[])
RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_found BIGINT;
BEGIN
    PERFORM 1 FROM {table} t WHERE t.key = ANY (p_keys) ORDER BY t.key FOR UPDATE;
    UPDATE {table} t SET count = t.count - 1 WHERE t.key = ANY (p_keys) AND t.count > 0;
    GET DIAGNOSTICS v_found = ROW_COUNT;
    RETURN v_found;
END
$fn$;
