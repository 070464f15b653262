-- keycard sessions table, MySQL / MariaDB, version 2. `amr` is how the session was
-- authenticated: keycard::AuthMethods as a small bit set (AuthMethods::bits). Sessions of
-- version 1 get 0, no method recorded. MySQL has no `ADD COLUMN IF NOT EXISTS`, so the step
-- checks `information_schema` first and the version can run again after an interruption.
SET @keycard_sql = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE {table} ADD COLUMN amr SMALLINT NOT NULL DEFAULT 0',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = {database} AND table_name = '{name}' AND column_name = 'amr');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
