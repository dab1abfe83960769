//! One conversion shared by every request for the same copy (single flight). The encoder writes
//! into a spool file on a blocking worker; readers follow the file as it grows, so bytes leave
//! before the conversion ends and memory stays bounded whatever the length. When the last
//! reader goes away before the end, the conversion is cancelled between blocks.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use mediastore_media::MediaError;
use tokio::sync::Notify;

/// Encoder output is handed to readers in pieces of about this size: small enough for a quick
/// first byte, large enough for few wake-ups.
const FLUSH_AT: usize = 32 * 1024;
/// Most bytes a reader takes from the spool file at once.
const READ_CHUNK: u64 = 256 * 1024;

/// Where a conversion stands.
#[derive(Debug, Clone)]
pub enum Phase {
    Running,
    Done,
    /// The media layer's error, kind kept, for every waiter to report the same way.
    Failed(MediaError),
}

/// A conversion in progress or just finished.
#[derive(Debug)]
pub struct Conversion {
    pub path: PathBuf,
    /// A read handle opened with the file: readers `pread` it, so the file may be renamed
    /// (into the cache) or removed while they follow it.
    file: Arc<File>,
    written: AtomicU64,
    phase: Mutex<Phase>,
    notify: Notify,
    /// Checked by the pipeline between blocks.
    pub cancel: AtomicBool,
    readers: AtomicUsize,
    /// The finished copy, for those who waited for it.
    copy: std::sync::OnceLock<Arc<super::ConvertedCopy>>,
}

impl Conversion {
    /// True once nobody wants the result (or its file was deleted).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    /// Keeps the finished copy for waiters.
    pub fn keep(&self, copy: Arc<super::ConvertedCopy>) {
        let _ = self.copy.set(copy);
    }

    /// The finished copy, once kept.
    pub fn kept(&self) -> Option<Arc<super::ConvertedCopy>> {
        self.copy.get().cloned()
    }

    /// A conversion writing to a new file at `path`; returns it and the file to write.
    pub fn create(path: PathBuf) -> std::io::Result<(Arc<Self>, File)> {
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let reader = File::open(&path)?;
        let conv = Arc::new(Conversion {
            path,
            file: Arc::new(reader),
            written: AtomicU64::new(0),
            phase: Mutex::new(Phase::Running),
            notify: Notify::new(),
            cancel: AtomicBool::new(false),
            readers: AtomicUsize::new(0),
            copy: std::sync::OnceLock::new(),
        });
        Ok((conv, writer))
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Ends the conversion and wakes every reader.
    pub fn finish(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.notify.notify_waiters();
    }

    /// Registers interest: the conversion runs while someone holds a [`Reader`].
    pub fn subscribe(self: &Arc<Self>) -> Reader {
        self.readers.fetch_add(1, Ordering::AcqRel);
        Reader {
            conv: Arc::clone(self),
            file: Arc::clone(&self.file),
            pos: 0,
        }
    }

    /// Waits until the conversion ends (holding interest in it meanwhile).
    pub async fn wait(self: &Arc<Self>) -> Phase {
        self.readers.fetch_add(1, Ordering::AcqRel);
        let _interest = Interest(Arc::clone(self));
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let phase = self.phase();
            if !matches!(phase, Phase::Running) {
                return phase;
            }
            notified.await;
        }
    }

    fn release(&self) {
        if self.readers.fetch_sub(1, Ordering::AcqRel) == 1
            && matches!(self.phase(), Phase::Running)
        {
            // Nobody wants the result any more: stop the encoder between blocks.
            self.cancel.store(true, Ordering::Release);
        }
    }
}

struct Interest(Arc<Conversion>);

impl Drop for Interest {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// The encoder's output: the spool file, published to readers as it grows.
pub struct SpoolWriter {
    conv: Arc<Conversion>,
    file: File,
    buf: Vec<u8>,
    len: u64,
}

impl SpoolWriter {
    /// The writer of `conv`'s spool file (`file`, from [`Conversion::create`]).
    pub fn new(conv: &Arc<Conversion>, file: File) -> Self {
        SpoolWriter {
            conv: Arc::clone(conv),
            file,
            buf: Vec::with_capacity(FLUSH_AT * 2),
            len: 0,
        }
    }

    fn publish(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        self.conv.written.store(self.len, Ordering::Release);
        self.conv.notify.notify_waiters();
        Ok(())
    }

    /// Bytes written in all.
    pub fn finish(mut self) -> std::io::Result<u64> {
        self.publish()?;
        Ok(self.len)
    }
}

impl Write for SpoolWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= FLUSH_AT {
            self.publish()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.publish()
    }
}

/// A reader following a conversion's spool file from the start.
pub struct Reader {
    conv: Arc<Conversion>,
    file: Arc<File>,
    pos: u64,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.conv.release();
    }
}

impl Reader {
    /// Waits until the conversion has published its first bytes or ended, so that input it
    /// cannot decode is answered as an error before a 200 goes out. (Output is published in
    /// pieces of [`FLUSH_AT`] bytes: an encoder's header alone does not count as a start.)
    pub async fn started(&self) -> Result<(), MediaError> {
        loop {
            let notified = self.conv.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.conv.phase() {
                Phase::Failed(e) => return Err(e),
                Phase::Done => return Ok(()),
                Phase::Running if self.conv.written() > 0 => return Ok(()),
                Phase::Running => notified.await,
            }
        }
    }

    /// The copy's bytes as they are produced; a failed or cancelled conversion ends the stream
    /// with an error, so a client never takes a cut copy for a whole one.
    pub fn into_stream(self) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        futures_util::stream::try_unfold(self, |mut r| async move {
            let conv = Arc::clone(&r.conv);
            loop {
                let notified = conv.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // Read the phase before the length: "done" then means every byte is published.
                let phase = conv.phase();
                let avail = conv.written();
                if r.pos < avail {
                    let n = (avail - r.pos).min(READ_CHUNK) as usize;
                    let (file, pos) = (Arc::clone(&r.file), r.pos);
                    let chunk = tokio::task::spawn_blocking(move || read_at(&file, pos, n))
                        .await
                        .map_err(std::io::Error::other)??;
                    r.pos += chunk.len() as u64;
                    return Ok(Some((chunk, r)));
                }
                match phase {
                    Phase::Done => return Ok(None),
                    Phase::Failed(why) => return Err(std::io::Error::other(why)),
                    Phase::Running => notified.await,
                }
            }
        })
    }
}

fn read_at(file: &File, pos: u64, n: usize) -> std::io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let mut buf = BytesMut::zeroed(n);
    file.read_exact_at(&mut buf, pos)?;
    Ok(buf.freeze())
}
