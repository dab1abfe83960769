//! The embedded blob store: one file per blob under `<root>/<k[0..2]>/<key>`, spooled uploads in
//! `<root>/.spool` (same filesystem, so the final move is an atomic rename).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream;

use super::blob::{BlobError, BlobStore, ByteStream};

/// Size of each read when streaming a blob: large enough for few syscalls, small enough to bound
/// memory per connection.
const CHUNK: usize = 256 * 1024;

/// Local-disk [`BlobStore`].
pub struct FsBlobs {
    root: PathBuf,
    spool: PathBuf,
}

impl FsBlobs {
    /// Opens the store at `root`, creating it, and empties the spool (leftovers of a crash).
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let spool = root.join(".spool");
        std::fs::create_dir_all(&spool)?;
        for entry in std::fs::read_dir(&spool)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                tracing::info!(path = %entry.path().display(), "removed interrupted upload");
            }
        }
        Ok(FsBlobs {
            root: root.to_path_buf(),
            spool,
        })
    }

    /// Opens a blob store from a `file://` URL.
    pub fn from_url(url: &str) -> Result<Self, BlobError> {
        let path = url
            .strip_prefix("file://")
            .ok_or_else(|| BlobError::Unsupported(url.to_string()))?;
        Self::open(Path::new(path))
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        // Keys are ours (UUID hex), but never let one escape the root.
        if key.len() < 3 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(BlobError::BadKey(key.to_string()));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }
}

fn not_found(key: &str, e: std::io::Error) -> BlobError {
    if e.kind() == std::io::ErrorKind::NotFound {
        BlobError::NotFound(key.to_string())
    } else {
        BlobError::Io(e)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

fn read_exact_at(file: &mut std::fs::File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(len);
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf.freeze())
}

#[async_trait]
impl BlobStore for FsBlobs {
    fn spool_dir(&self) -> &Path {
        &self.spool
    }

    async fn put_file(&self, key: &str, spooled: &Path) -> Result<(), BlobError> {
        let dest = self.path(key)?;
        let src = spooled.to_path_buf();
        blocking(move || {
            let dir = dest.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&src, &dest)?;
            // Make the rename durable before the metadata says the file exists.
            std::fs::File::open(dir)?.sync_all()
        })
        .await?;
        Ok(())
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        let path = self.path(key)?;
        let owned_key = key.to_string();
        let file = blocking(move || std::fs::File::open(path))
            .await
            .map_err(|e| not_found(&owned_key, e))?;
        // Each chunk is read on the blocking pool; the file handle travels with the stream.
        let state = (Some(file), offset, len);
        let s = stream::try_unfold(state, |(file, pos, left)| async move {
            let Some(mut file) = file else {
                return Ok(None);
            };
            if left == 0 {
                return Ok(None);
            }
            let n = left.min(CHUNK as u64) as usize;
            let (file, chunk) = blocking(move || {
                let chunk = read_exact_at(&mut file, pos, n)?;
                Ok((file, chunk))
            })
            .await?;
            Ok(Some((chunk, (Some(file), pos + n as u64, left - n as u64))))
        });
        Ok(Box::pin(s))
    }

    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        let path = self.path(key)?;
        let owned_key = key.to_string();
        blocking(move || {
            let mut file = std::fs::File::open(path)?;
            read_exact_at(&mut file, offset, len)
        })
        .await
        .map_err(|e| not_found(&owned_key, e))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await?;
        Ok(())
    }

    async fn list_keys(&self) -> Result<Vec<String>, BlobError> {
        let root = self.root.clone();
        Ok(blocking(move || {
            let mut keys = Vec::new();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                let name = dir.file_name();
                if !dir.file_type()?.is_dir() || name.to_string_lossy().starts_with('.') {
                    continue;
                }
                for f in std::fs::read_dir(dir.path())? {
                    let f = f?;
                    if f.file_type()?.is_file() {
                        keys.push(f.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Ok(keys)
        })
        .await?)
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[tokio::test]
    async fn put_read_delete() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = FsBlobs::open(dir.path())?;
        let spooled = store.spool_dir().join("x.part");
        std::fs::write(&spooled, b"hello world")?;
        store.put_file("abcdef", &spooled).await?;
        assert!(!spooled.exists());
        let got: Vec<Bytes> = store
            .read_range("abcdef", 6, 5)
            .await?
            .try_collect()
            .await?;
        assert_eq!(got.concat(), b"world");
        assert_eq!(&store.read_small("abcdef", 0, 5).await?[..], b"hello");
        assert_eq!(store.list_keys().await?, vec!["abcdef".to_string()]);
        store.delete("abcdef").await?;
        assert!(matches!(
            store.read_small("abcdef", 0, 1).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            store.read_small("../etc", 0, 1).await,
            Err(BlobError::BadKey(_))
        ));
        Ok(())
    }
}
