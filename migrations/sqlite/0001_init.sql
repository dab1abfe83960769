-- mediastore metadata schema (SQLite dialect; PostgreSQL gets its own folder later).
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE customers (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    quota_bytes     INTEGER NOT NULL,
    max_containers  INTEGER NOT NULL,
    total_bytes     INTEGER NOT NULL DEFAULT 0,
    total_files     INTEGER NOT NULL DEFAULT 0,
    container_count INTEGER NOT NULL DEFAULT 0,
    date_created    INTEGER NOT NULL,
    date_modified   INTEGER NOT NULL
);

CREATE TABLE tokens (
    token_hash   TEXT PRIMARY KEY,           -- hex SHA-256 of the token; the token itself is never stored
    customer_id  TEXT NOT NULL REFERENCES customers(id),
    date_created INTEGER NOT NULL
);

CREATE TABLE containers (
    sid                     TEXT PRIMARY KEY,
    customer_id             TEXT NOT NULL REFERENCES customers(id),
    is_default              INTEGER NOT NULL DEFAULT 0,
    quota_bytes             INTEGER NOT NULL,
    quota_files             INTEGER,
    total_bytes             INTEGER NOT NULL DEFAULT 0,
    total_files             INTEGER NOT NULL DEFAULT 0,
    max_file_size           INTEGER,
    allowed_classifications TEXT,            -- JSON array or NULL
    blocked_classifications TEXT,            -- JSON array or NULL
    threshold_action        TEXT NOT NULL DEFAULT 'no_action',
    threshold_bytes         INTEGER,
    threshold_files         INTEGER,
    threshold_grace_period  INTEGER,
    threshold_bytes_target  INTEGER,
    threshold_files_target  INTEGER,
    threshold_total_bytes   INTEGER NOT NULL DEFAULT 0,
    threshold_total_files   INTEGER NOT NULL DEFAULT 0,
    threshold_reached_at    INTEGER,         -- when the threshold was first reached (grace period start)
    is_unique               INTEGER NOT NULL DEFAULT 0,
    unique_key              TEXT,            -- canonical JSON of the six keys when is_unique
    integer_key_1           INTEGER,
    integer_key_2           INTEGER,
    string_key_1            TEXT,
    string_key_2            TEXT,
    string_key_3            TEXT,
    string_key_4            TEXT,
    date_created            INTEGER NOT NULL,
    date_modified           INTEGER NOT NULL
);
CREATE INDEX containers_by_customer ON containers(customer_id, date_created);
CREATE UNIQUE INDEX containers_unique_keys ON containers(customer_id, unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE files (
    sid                    TEXT PRIMARY KEY,
    container_sid          TEXT NOT NULL REFERENCES containers(sid),
    customer_id            TEXT NOT NULL REFERENCES customers(id),
    blob_key               TEXT NOT NULL UNIQUE,
    owner_id               TEXT,
    reference_type         TEXT NOT NULL DEFAULT 'none',
    reference_id           TEXT,
    name                   TEXT NOT NULL,
    description            TEXT,
    tag                    TEXT,
    size                   INTEGER NOT NULL,
    mime_type              TEXT NOT NULL,
    content_format         TEXT NOT NULL,
    content_classification TEXT NOT NULL,
    media                  TEXT,             -- JSON object or NULL
    checksum_sha256        TEXT NOT NULL,
    publish                TEXT NOT NULL DEFAULT 'no',
    file_access_name       TEXT NOT NULL UNIQUE,
    expires_at             INTEGER,
    threshold_include      INTEGER NOT NULL DEFAULT 1,
    is_unique              INTEGER NOT NULL DEFAULT 0,
    unique_key             TEXT,
    integer_key_1          INTEGER,
    integer_key_2          INTEGER,
    string_key_1           TEXT,
    string_key_2           TEXT,
    string_key_3           TEXT,
    string_key_4           TEXT,
    type                   TEXT,
    desired_format         TEXT,
    desired_bitrate        INTEGER,
    date_last_accessed     INTEGER,
    date_created           INTEGER NOT NULL,
    date_modified          INTEGER NOT NULL
);
CREATE INDEX files_by_customer ON files(customer_id, date_created, sid);
CREATE INDEX files_by_container ON files(container_sid, date_created, sid);
CREATE UNIQUE INDEX files_unique_keys ON files(customer_id, unique_key) WHERE unique_key IS NOT NULL;
-- The LRU cleanup walks included files from the least recently accessed: cost follows what it deletes.
CREATE INDEX files_lru ON files(container_sid, threshold_include, coalesce(date_last_accessed, 0), date_created);
CREATE INDEX files_expiry ON files(expires_at) WHERE expires_at IS NOT NULL;

-- A one-row table every write transaction updates first, so SQLite takes the write lock
-- before the transaction reads (see src/store/sqlite.rs).
CREATE TABLE lock_anchor (n INTEGER NOT NULL);
INSERT INTO lock_anchor (n) VALUES (0);
