-- Converted copies kept in the blob store (only when it is shared by several nodes): each
-- belongs to a file's blob and goes with it; their sum stays within --shared-copies.
CREATE TABLE copies (
    copy_key     TEXT PRIMARY KEY,
    blob_key     TEXT NOT NULL,
    size         INTEGER NOT NULL,
    date_created INTEGER NOT NULL
);
CREATE INDEX copies_by_blob ON copies(blob_key);
CREATE INDEX copies_by_age ON copies(date_created);
