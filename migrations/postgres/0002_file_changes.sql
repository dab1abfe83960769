-- Every node hears of a change to a file that its caches care about: a delete, or a change of
-- what the file is served as. Delivered at commit, on the channel each node LISTENs to
-- ("<TG_OP> <sid> <blob_key>"). A read's date_last_accessed alone does not notify.
CREATE FUNCTION mediastore_file_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mediastore_files', TG_OP || ' ' || OLD.sid || ' ' || OLD.blob_key);
    RETURN NULL;
END
$$;

CREATE TRIGGER files_changed
    AFTER DELETE OR UPDATE OF name, mime_type, content_format, publish, file_access_name,
        expires_at, checksum_sha256, blob_key, size
    ON files FOR EACH ROW EXECUTE FUNCTION mediastore_file_changed();
