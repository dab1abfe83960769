//! The embedded blob store: one file per blob under `<root>/<k[0..2]>/<key>`, uploads written in
//! `<root>/.spool` (same filesystem, so the commit is an atomic rename).
//!
//! Reads are positioned (`pread`) on a handle opened once: bytes the page cache holds are read
//! on the runtime thread without blocking (`preadv2(RWF_NOWAIT)`), only a cache miss goes to the
//! blocking pool. A hand-off to that pool costs two thread wake-ups, which for a 4 KiB range is
//! most of the work.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::blob::{
    check_key, stream_by_reads, BlobEntry, BlobError, BlobStore, BlobWriter, ByteStream, LocalCopy,
    OpenBlob,
};

/// Size of each read when streaming: large enough for few syscalls and few hand-offs to the
/// blocking pool, small enough to bound memory per connection (hyper holds about two).
pub const CHUNK: usize = 512 * 1024;

/// Chunks in flight between an upload and its disk writer.
const QUEUE: usize = 8;

/// Local-disk [`BlobStore`].
pub struct FsBlobs {
    root: PathBuf,
    spool: PathBuf,
}

impl FsBlobs {
    /// Opens the store at `root`, creating it, and empties the spool (leftovers of a crash: this
    /// store belongs to one process).
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let spool = root.join(".spool");
        std::fs::create_dir_all(&spool)?;
        let store = FsBlobs {
            root: root.to_path_buf(),
            spool,
        };
        let removed = store.sweep_spool(Duration::ZERO)?;
        if removed > 0 {
            tracing::info!(removed, "removed interrupted uploads");
        }
        Ok(store)
    }

    /// Opens an existing store as it is, to read it (nothing created, nothing swept).
    pub fn existing(root: &Path) -> Result<Self, BlobError> {
        if !root.is_dir() {
            return Err(BlobError::Config(format!(
                "{} is not a blob store directory",
                root.display()
            )));
        }
        Ok(FsBlobs {
            root: root.to_path_buf(),
            spool: root.join(".spool"),
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
        check_key(key)?;
        Ok(self.root.join(&key[..2]).join(key))
    }

    fn sweep_spool(&self, grace: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now()
            .checked_sub(grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.spool)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && meta.modified().map_or(true, |m| m <= cutoff) {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
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

/// An open local file read by position: the fast path of the embedded store, and of converted
/// copies kept on local disk.
#[derive(Debug)]
pub struct LocalFile {
    file: std::fs::File,
    len: u64,
}

impl LocalFile {
    /// Wraps an open file of `len` bytes.
    pub fn new(file: std::fs::File, len: u64) -> Self {
        LocalFile { file, len }
    }

    /// Opens `path` (a blocking call: run it off the runtime).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LocalFile { file, len })
    }
}

#[async_trait]
impl OpenBlob for LocalFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_now(&self, offset: u64, len: usize) -> Option<Bytes> {
        let mut buf = BytesMut::zeroed(len);
        (read_cached(&self.file, offset, &mut buf) == len).then(|| buf.freeze())
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        let file = self.file.try_clone()?;
        Ok(blocking(move || {
            let mut buf = BytesMut::zeroed(len);
            read_exact_at(&file, &mut buf, offset)?;
            Ok(buf.freeze())
        })
        .await?)
    }

    fn stream(self: Arc<Self>, offset: u64, len: u64) -> ByteStream {
        stream_by_reads(self, offset, len, CHUNK)
    }
}

/// Fills `buf` from what the page cache already holds, never waiting for the disk; returns how
/// many bytes it read (0 on a cache miss, at EOF, or where `RWF_NOWAIT` is not supported).
#[cfg(target_os = "linux")]
fn read_cached(file: &std::fs::File, offset: u64, buf: &mut [u8]) -> usize {
    use rustix::io::{preadv2, ReadWriteFlags};
    let mut done = 0;
    while done < buf.len() {
        let mut slices = [std::io::IoSliceMut::new(&mut buf[done..])];
        match preadv2(
            file,
            &mut slices,
            offset + done as u64,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(n) if n > 0 => done += n,
            // EOF, EAGAIN (not cached), EOPNOTSUPP: the blocking read finishes or reports it.
            _ => break,
        }
    }
    done
}

#[cfg(not(target_os = "linux"))]
fn read_cached(_: &std::fs::File, _: u64, _: &mut [u8]) -> usize {
    0
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file.try_clone()?;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// An upload being written to the spool by a blocking writer thread.
struct FsWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    /// Set when the upload is dropped unfinished: the writer thread then removes the part it
    /// may have created after the drop did.
    abandoned: Arc<AtomicBool>,
    committed: bool,
    writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    part: PathBuf,
    dest: PathBuf,
}

fn write_part(
    path: &Path,
    mut rx: mpsc::Receiver<Bytes>,
    abandoned: &AtomicBool,
) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
    }
    if abandoned.load(Ordering::Acquire) {
        return std::fs::remove_file(path);
    }
    // Durable before anything refers to it.
    file.sync_all()
}

impl FsWriter {
    async fn finish_writing(&mut self) -> Result<(), BlobError> {
        drop(self.tx.take());
        match self.writer.take() {
            Some(w) => Ok(w.await.map_err(std::io::Error::other)??),
            None => Ok(()),
        }
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // A writer thread still running removes the part itself when its channel closes (now).
        self.abandoned.store(true, Ordering::Release);
        if self.writer.is_some() {
            return;
        }
        // It already ended (a failed commit): remove the part off the runtime's threads.
        let part = self.part.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || std::fs::remove_file(part));
            }
            Err(_) => {
                let _ = std::fs::remove_file(part);
            }
        }
    }
}

#[async_trait]
impl BlobWriter for FsWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if !sent {
            // The writer stopped: its own error says why.
            self.finish_writing().await?;
            return Err(std::io::Error::other("upload writer stopped").into());
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), BlobError> {
        self.finish_writing().await?;
        let (part, dest) = (self.part.clone(), self.dest.clone());
        blocking(move || {
            let dir = dest.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            std::fs::rename(&part, &dest)?;
            // Make the rename durable before the metadata says the file exists.
            std::fs::File::open(dir)?.sync_all()
        })
        .await?;
        self.committed = true;
        Ok(())
    }

    async fn abort(mut self: Box<Self>) {
        // Flagged first: the writer removes the part instead of syncing it.
        self.abandoned.store(true, Ordering::Release);
        let _ = self.finish_writing().await;
    }
}

#[async_trait]
impl BlobStore for FsBlobs {
    async fn begin(&self, key: &str) -> Result<Box<dyn BlobWriter>, BlobError> {
        let dest = self.path(key)?;
        let part = self.spool.join(format!("{key}.part"));
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
        let writer_path = part.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&abandoned);
        let writer = tokio::task::spawn_blocking(move || write_part(&writer_path, rx, &flag));
        Ok(Box::new(FsWriter {
            tx: Some(tx),
            abandoned,
            committed: false,
            writer: Some(writer),
            part,
            dest,
        }))
    }

    async fn open(&self, key: &str) -> Result<Arc<dyn OpenBlob>, BlobError> {
        let path = self.path(key)?;
        let file = blocking(move || LocalFile::open(&path))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(Arc::new(file))
    }

    async fn read_range(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream, BlobError> {
        Ok(self.open(key).await?.stream(offset, len))
    }

    async fn read_small(&self, key: &str, offset: u64, len: usize) -> Result<Bytes, BlobError> {
        let path = self.path(key)?;
        blocking(move || {
            let file = std::fs::File::open(path)?;
            let mut buf = BytesMut::zeroed(len);
            read_exact_at(&file, &mut buf, offset)?;
            Ok(buf.freeze())
        })
        .await
        .map_err(|e| not_found(key, e))
    }

    async fn local_copy(&self, key: &str) -> Result<LocalCopy, BlobError> {
        let path = self.path(key)?;
        let probe = path.clone();
        blocking(move || std::fs::metadata(probe))
            .await
            .map_err(|e| not_found(key, e))?;
        Ok(LocalCopy::in_place(path))
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

    async fn list(&self) -> Result<Vec<BlobEntry>, BlobError> {
        let root = self.root.clone();
        Ok(blocking(move || {
            let mut entries = Vec::new();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                let name = dir.file_name();
                if !dir.file_type()?.is_dir() || name.to_string_lossy().starts_with('.') {
                    continue;
                }
                for f in std::fs::read_dir(dir.path())? {
                    let f = f?;
                    let meta = f.metadata()?;
                    if meta.is_file() {
                        entries.push(BlobEntry {
                            key: f.file_name().to_string_lossy().into_owned(),
                            modified: meta.modified()?,
                        });
                    }
                }
            }
            Ok(entries)
        })
        .await?)
    }

    async fn sweep_incomplete(&self, grace: Duration) -> Result<usize, BlobError> {
        let spool = FsBlobs {
            root: self.root.clone(),
            spool: self.spool.clone(),
        };
        Ok(blocking(move || spool.sweep_spool(grace)).await?)
    }

    fn is_shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;

    #[tokio::test]
    async fn commit_read_delete() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = FsBlobs::open(dir.path())?;
        let mut w = store.begin("abcdef").await?;
        w.write(Bytes::from_static(b"hello ")).await?;
        w.write(Bytes::from_static(b"world")).await?;
        assert!(
            matches!(store.open("abcdef").await, Err(BlobError::NotFound(_))),
            "nothing visible before commit"
        );
        w.commit().await?;
        let got: Vec<Bytes> = store
            .read_range("abcdef", 6, 5)
            .await?
            .try_collect()
            .await?;
        assert_eq!(got.concat(), b"world");
        assert_eq!(&store.read_small("abcdef", 0, 5).await?[..], b"hello");
        let open = store.open("abcdef").await?;
        assert_eq!(open.len(), 11);
        assert_eq!(&open.read_at(2, 3).await?[..], b"llo");
        let keys: Vec<String> = store.list().await?.into_iter().map(|e| e.key).collect();
        assert_eq!(keys, vec!["abcdef".to_string()]);
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

    #[tokio::test]
    async fn aborted_or_dropped_uploads_leave_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = FsBlobs::open(dir.path())?;
        let mut w = store.begin("aborted").await?;
        w.write(Bytes::from_static(b"partial")).await?;
        w.abort().await;
        let mut w = store.begin("dropped").await?;
        w.write(Bytes::from_static(b"partial")).await?;
        drop(w);
        assert!(store.list().await?.is_empty());
        // The dropped upload's writer thread finishes on its own.
        for _ in 0..100 {
            if std::fs::read_dir(dir.path().join(".spool"))?.count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(std::fs::read_dir(dir.path().join(".spool"))?.count(), 0);
        Ok(())
    }
}
