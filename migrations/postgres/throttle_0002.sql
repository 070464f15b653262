-- keycard login throttle, PostgreSQL, version 2. `{table}`, `{name}` and `{schema}` as in
-- throttle_0001.sql. Two more kinds of rows in the same table:
--   account_trusted:<account>  attempts for one account from addresses trusted for it
--   rate:<bucket>:<digest>     events counted by `hit` (registrations per address, ...)

-- Reserve, as in version 1, but an attempt counts under exactly one per-account counter:
-- `p_keys` may hold both (kind 3: untrusted addresses, kind 5: trusted addresses); kind 3
-- applies unless `p_trusted` names a live trusted address, kind 5 only if it does. So
-- untrusted addresses can never fill the counter that holds trusted ones, and trusted
-- addresses are capped too. `o_account_counted` is true when kind 3 was the one.
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
    WITH locked AS (
        INSERT INTO {table} AS t (key, count, ends_at)
        SELECT c.k, 0, p_now
        FROM unnest(p_keys, p_kinds) AS c (k, kind)
        WHERE (c.kind <> 3 OR o_account_counted) AND (c.kind <> 5 OR NOT o_account_counted)
        ORDER BY c.k
        ON CONFLICT (key) DO UPDATE SET count = t.count
        RETURNING 1
    )
    SELECT count(*) INTO v_locked FROM locked;

    SELECT c.kind, t.ends_at INTO o_refused_kind, o_refused_until
    FROM unnest(p_keys, p_kinds, p_max) WITH ORDINALITY AS c (k, kind, max, ord)
    JOIN {table} t ON t.key = c.k
    WHERE (c.kind <> 3 OR o_account_counted) AND (c.kind <> 5 OR NOT o_account_counted)
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
    WHERE t.key = c.k
      AND (c.kind <> 3 OR o_account_counted) AND (c.kind <> 5 OR NOT o_account_counted);
    o_allowed := true;
END
$fn$;

-- Hit: count one event under `p_key` (at most `p_max` per window; a window opening at
-- `p_now` ends at `p_end`), or refuse it without counting (`o_until`: when the full window
-- ends). One call is one atomic step: the upsert creates the row if missing and locks it.
CREATE OR REPLACE FUNCTION {schema}"{name}_hit"(
    p_key TEXT,
    p_now TIMESTAMPTZ,
    p_max BIGINT,
    p_end TIMESTAMPTZ,
    OUT o_allowed BOOLEAN,
    OUT o_until TIMESTAMPTZ
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_count BIGINT;
    v_ends TIMESTAMPTZ;
BEGIN
    INSERT INTO {table} AS t (key, count, ends_at) VALUES (p_key, 0, p_now)
    ON CONFLICT (key) DO UPDATE SET count = t.count
    RETURNING t.count, t.ends_at INTO v_count, v_ends;
    IF v_count > 0 AND v_ends > p_now THEN
        IF v_count >= p_max THEN
            o_allowed := false;
            o_until := v_ends;
            RETURN;
        END IF;
        UPDATE {table} t SET count = t.count + 1 WHERE t.key = p_key;
    ELSE
        UPDATE {table} t SET count = 1, ends_at = p_end WHERE t.key = p_key;
    END IF;
    o_allowed := true;
END
$fn$;
