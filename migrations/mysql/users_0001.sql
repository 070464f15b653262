-- keycard users table, MySQL / MariaDB. `email` is stored normalized (trimmed, lowercase).
-- `id` and `email` are binary strings, so lookups match byte for byte (no case or accent
-- folding, no trailing-space padding); the UNIQUE index refuses a taken email.
CREATE TABLE IF NOT EXISTS {table} (
    id            VARBINARY(767)  NOT NULL,
    email         VARBINARY(1024) NOT NULL,
    password_hash TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, -- PHC string
    first_name    TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    last_name     TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY `{name}_email_key` (email)
) ENGINE = InnoDB;
