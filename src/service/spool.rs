//! Spooling an upload to a temporary file: hashed and counted while written, under a limit, with
//! the hashing and disk writes on a blocking thread fed through a bounded channel (memory stays
//! at a few chunks whatever the body's length). The file is removed on drop unless kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::domain::detect::SNIFF_LEN;
use crate::domain::DomainError;
use crate::error::{Error, Result};

/// Chunks in flight between the network and the disk writer.
const QUEUE: usize = 8;

/// The most bytes an upload may have, and the error to give past it.
#[derive(Debug, Clone)]
pub struct Limit {
    pub max_bytes: u64,
    pub exceeded: DomainError,
}

/// A complete upload on disk.
#[derive(Debug)]
pub struct Spooled {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The first bytes, for content detection.
    pub head: Vec<u8>,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // After a successful put the file was renamed away and this finds nothing.
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Written {
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

fn write_all(path: &Path, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<Written> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_LEN);
    let mut size = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
        if head.len() < SNIFF_LEN {
            let take = (SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        file.write_all(&chunk)?;
        size += chunk.len() as u64;
    }
    // Durable before anything refers to it.
    file.sync_all()?;
    Ok(Written {
        size,
        sha256: hex::encode(hasher.finalize()),
        head,
    })
}

/// Writes `body` into a new file in `dir`. A body error, a client that goes away, or a body
/// over `limit` leaves nothing behind.
pub async fn spool<S, E>(dir: &Path, body: S, limit: &Limit) -> Result<Spooled>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: std::fmt::Display,
{
    let path = dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let writer_path = path.clone();
    let writer = tokio::task::spawn_blocking(move || write_all(&writer_path, rx));
    // The guard removes the partial file on every early return (and if this future is dropped).
    let guard = Spooled {
        path: path.clone(),
        size: 0,
        sha256: String::new(),
        head: Vec::new(),
    };

    let mut seen = 0u64;
    let mut body = std::pin::pin!(body);
    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Error::Body(e.to_string()))?;
            seen += chunk.len() as u64;
            if seen > limit.max_bytes {
                return Err(limit.exceeded.clone().into());
            }
            if tx.send(chunk).await.is_err() {
                // The writer stopped: its own error is reported below.
                break;
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(std::io::Error::other);
    outcome?;
    let written = written??;
    let mut spooled = guard;
    spooled.size = written.size;
    spooled.sha256 = written.sha256;
    spooled.head = written.head;
    Ok(spooled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn limit(max: u64) -> Limit {
        Limit {
            max_bytes: max,
            exceeded: DomainError::TooLarge {
                field: "max_file_size".into(),
                message: "too big".into(),
            },
        }
    }

    #[tokio::test]
    async fn hashes_and_counts() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let body = stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        let s = spool(dir.path(), body, &limit(100)).await?;
        assert_eq!(s.size, 11);
        assert_eq!(
            s.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(std::fs::read(&s.path)?, b"hello world");
        let path = s.path.clone();
        drop(s);
        assert!(!path.exists());
        Ok(())
    }

    #[tokio::test]
    async fn over_limit_or_broken_leaves_nothing(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let body =
            stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 64]))));
        assert!(spool(dir.path(), body, &limit(100)).await.is_err());
        let body = stream::iter(vec![
            Ok(Bytes::from_static(b"abc")),
            Err(std::io::Error::other("cut")),
        ]);
        assert!(spool(dir.path(), body, &limit(100)).await.is_err());
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }
}
