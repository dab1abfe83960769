-- External containers: the bytes of a container of type aws, gcp or azure are in the
-- customer's own bucket. `external` is its location (JSON, no secret); `external_secret` its
-- credential, sealed with the deployment's key (AES-256-GCM, see src/domain/sealing.rs).
ALTER TABLE containers ADD COLUMN type TEXT NOT NULL DEFAULT 'internal';
ALTER TABLE containers ADD COLUMN external TEXT;
ALTER TABLE containers ADD COLUMN external_secret BYTEA;
