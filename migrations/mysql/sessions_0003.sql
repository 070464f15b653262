-- keycard sessions table, MySQL / MariaDB, version 3. API tokens: `token_name` and
-- `token_scopes` (the space-separated scopes) are both set for an API token and both NULL for
-- an interactive session (a login), which every session of versions 1 and 2 is. As in version
-- 2, each column is added only if `information_schema` lacks it, so the version can run again
-- after an interruption.
SET @keycard_sql = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE {table} ADD COLUMN token_name TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = {database} AND table_name = '{name}' AND column_name = 'token_name');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
SET @keycard_sql = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE {table} ADD COLUMN token_scopes TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = {database} AND table_name = '{name}' AND column_name = 'token_scopes');
PREPARE keycard_step FROM @keycard_sql;
EXECUTE keycard_step;
DEALLOCATE PREPARE keycard_step;
