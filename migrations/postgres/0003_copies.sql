-- Converted copies kept in the blob store, shared by every node: each belongs to a file's blob
-- and goes with it; their sum stays within --shared-copies.
CREATE TABLE copies (
    copy_key     TEXT COLLATE "C" PRIMARY KEY,
    blob_key     TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    date_created BIGINT NOT NULL
);
CREATE INDEX copies_by_blob ON copies(blob_key);
CREATE INDEX copies_by_age ON copies(date_created);
