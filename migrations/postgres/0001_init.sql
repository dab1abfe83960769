-- mediastore metadata schema, PostgreSQL dialect: the same tables and indexes as SQLite's
-- (migrations/sqlite/), with BIGINT times (milliseconds since the Unix epoch, UTC) and BOOLEAN
-- flags. Index names are those of SQLite: src/store/rows.rs recognises violations by them.
-- Keys sort bytewise (COLLATE "C"), as in SQLite, so paging and ties order the same on both.

CREATE TABLE customers (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT NOT NULL,
    quota_bytes     BIGINT NOT NULL,
    max_containers  BIGINT NOT NULL,
    total_bytes     BIGINT NOT NULL DEFAULT 0,
    total_files     BIGINT NOT NULL DEFAULT 0,
    container_count BIGINT NOT NULL DEFAULT 0,
    date_created    BIGINT NOT NULL,
    date_modified   BIGINT NOT NULL
);

CREATE TABLE tokens (
    token_hash   TEXT COLLATE "C" PRIMARY KEY,           -- hex SHA-256 of the token; the token itself is never stored
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    date_created BIGINT NOT NULL
);
CREATE INDEX tokens_by_customer ON tokens(customer_id);

CREATE TABLE containers (
    sid                     TEXT COLLATE "C" PRIMARY KEY,
    customer_id             TEXT NOT NULL REFERENCES customers(id),
    is_default              BOOLEAN NOT NULL DEFAULT FALSE,
    quota_bytes             BIGINT NOT NULL,
    quota_files             BIGINT,
    total_bytes             BIGINT NOT NULL DEFAULT 0,
    total_files             BIGINT NOT NULL DEFAULT 0,
    max_file_size           BIGINT,
    allowed_classifications TEXT,            -- JSON array or NULL
    blocked_classifications TEXT,            -- JSON array or NULL
    threshold_action        TEXT NOT NULL DEFAULT 'no_action',
    threshold_bytes         BIGINT,
    threshold_files         BIGINT,
    threshold_grace_period  BIGINT,
    threshold_bytes_target  BIGINT,
    threshold_files_target  BIGINT,
    threshold_total_bytes   BIGINT NOT NULL DEFAULT 0,
    threshold_total_files   BIGINT NOT NULL DEFAULT 0,
    threshold_reached_at    BIGINT,
    is_unique               BOOLEAN NOT NULL DEFAULT FALSE,
    unique_key              TEXT,
    integer_key_1           BIGINT,
    integer_key_2           BIGINT,
    string_key_1            TEXT,
    string_key_2            TEXT,
    string_key_3            TEXT,
    string_key_4            TEXT,
    date_created            BIGINT NOT NULL,
    date_modified           BIGINT NOT NULL
);
CREATE INDEX containers_by_customer ON containers(customer_id, date_created);
CREATE UNIQUE INDEX containers_unique_keys ON containers(customer_id, unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE files (
    sid                    TEXT COLLATE "C" PRIMARY KEY,
    container_sid          TEXT NOT NULL REFERENCES containers(sid),
    customer_id            TEXT NOT NULL REFERENCES customers(id),
    blob_key               TEXT NOT NULL,
    owner_id               TEXT,
    reference_type         TEXT NOT NULL DEFAULT 'none',
    reference_id           TEXT,
    name                   TEXT NOT NULL,
    description            TEXT,
    tag                    TEXT,
    size                   BIGINT NOT NULL,
    mime_type              TEXT NOT NULL,
    content_format         TEXT NOT NULL,
    content_classification TEXT NOT NULL,
    media                  TEXT,             -- JSON object or NULL
    checksum_sha256        TEXT NOT NULL,
    publish                TEXT NOT NULL DEFAULT 'no',
    file_access_name       TEXT NOT NULL,
    expires_at             BIGINT,
    threshold_include      BOOLEAN NOT NULL DEFAULT TRUE,
    is_unique              BOOLEAN NOT NULL DEFAULT FALSE,
    unique_key             TEXT,
    integer_key_1          BIGINT,
    integer_key_2          BIGINT,
    string_key_1           TEXT,
    string_key_2           TEXT,
    string_key_3           TEXT,
    string_key_4           TEXT,
    type                   TEXT,
    desired_format         TEXT,
    desired_bitrate        BIGINT,
    date_last_accessed     BIGINT,
    date_created           BIGINT NOT NULL,
    date_modified          BIGINT NOT NULL
);
CREATE UNIQUE INDEX files_blob_key ON files(blob_key);
CREATE UNIQUE INDEX files_file_access_name ON files(file_access_name);
CREATE INDEX files_by_customer ON files(customer_id, date_created, sid);
CREATE INDEX files_by_container ON files(container_sid, date_created, sid);
CREATE UNIQUE INDEX files_unique_keys ON files(customer_id, unique_key) WHERE unique_key IS NOT NULL;
-- The LRU cleanup walks included files from the least recently accessed: cost follows what it deletes.
CREATE INDEX files_lru ON files(container_sid, threshold_include, coalesce(date_last_accessed, 0), date_created);
CREATE INDEX files_expiry ON files(expires_at) WHERE expires_at IS NOT NULL;

-- Secrets of the deployment (the admin token's SHA-256, the link-signing key), shared by every node.
CREATE TABLE secrets (
    name  TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);
