//! Changes to files that caches must hear of, whichever node made them. The service layer
//! raises them; caches (the publish cache, converted copies) subscribe. Plain types, no I/O.

/// A committed change to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileChange {
    /// What the file is served as changed (publish, access name, name, type, expiry).
    Updated { file_sid: String, blob_key: String },
    /// The file is gone (deleted, expired, evicted): its bytes and copies go too.
    Deleted { file_sid: String, blob_key: String },
}

impl FileChange {
    /// The blob the change concerns.
    pub fn blob_key(&self) -> &str {
        match self {
            FileChange::Updated { blob_key, .. } | FileChange::Deleted { blob_key, .. } => blob_key,
        }
    }

    /// Reads a change as the metadata store's channel carries it: `"<op> <sid> <blob_key>"`,
    /// op `UPDATE` or `DELETE`.
    pub fn parse(payload: &str) -> Option<FileChange> {
        let mut words = payload.split(' ');
        let (op, sid, key) = (words.next()?, words.next()?, words.next()?);
        let (file_sid, blob_key) = (sid.to_string(), key.to_string());
        match op {
            "UPDATE" => Some(FileChange::Updated { file_sid, blob_key }),
            "DELETE" => Some(FileChange::Deleted { file_sid, blob_key }),
            _ => None,
        }
    }
}

/// Something that keeps what a change can make stale.
pub trait Subscriber: Send + Sync {
    /// A file changed (here or on another node).
    fn file_changed(&self, change: &FileChange);
    /// Changes may be missed from now on (`true`: the node lost its channel to the others), or
    /// are heard again (`false`). While out of touch, a subscriber serves nothing it cached;
    /// on either transition it drops what it holds.
    fn out_of_touch(&self, lost: bool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_payloads_parse() {
        assert_eq!(
            FileChange::parse("DELETE abc k1"),
            Some(FileChange::Deleted {
                file_sid: "abc".into(),
                blob_key: "k1".into()
            })
        );
        assert_eq!(
            FileChange::parse("UPDATE abc k1").map(|c| c.blob_key().to_string()),
            Some("k1".into())
        );
        assert_eq!(FileChange::parse("INSERT abc k1"), None);
        assert_eq!(FileChange::parse("DELETE abc"), None);
    }
}
