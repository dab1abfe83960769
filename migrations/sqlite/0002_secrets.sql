-- Secrets of the deployment (the admin token's SHA-256, the link-signing key), kept with the
-- metadata so every node of a cluster shares them.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
