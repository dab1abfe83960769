//! Runs a CPU-heavy encoder (LAME) on its own thread, overlapping it with decode
//! and resampling on the caller's.
//!
//! Samples go to the encoder in the order `encode` is called (gathered into blocks
//! of [`BATCH`] samples), and its bytes come back and are written to the caller's
//! output in that same order, so the output is byte for byte that of the encoder
//! run inline. At most [`DEPTH`] blocks are in
//! flight (queued or being encoded); their buffers are reused. Dropping the wrapper
//! (an error or cancellation on the caller's side) tells the thread to skip what is
//! still queued and joins it.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;

use super::{BlockEncoder, Patch};
use crate::MediaError;

/// Blocks in flight between the pipeline and the encoding thread.
const DEPTH: usize = 4;
/// Samples gathered into one block before it goes to the thread. The pipeline's blocks are one
/// decoded packet (~600 frames of an MP3 resampled to 24 kHz): handing each over woke both
/// threads ~9,000 times for 3 minutes of audio (~5% of the conversion's CPU in futex and
/// scheduler work). The encoder sees the same samples in the same order either way.
const BATCH: usize = 16 * 1024;

enum Job {
    /// Interleaved PCM to encode.
    Pcm(Vec<f32>),
    /// No more PCM: flush the encoder.
    Finish,
}

enum Done {
    /// The bytes for one block, and its PCM buffer back for reuse.
    Block(Result<Vec<u8>, MediaError>, Vec<f32>),
    /// The encoder's trailing bytes and patch.
    Finished(Result<(Vec<u8>, Option<Patch>), MediaError>),
}

pub(crate) struct Threaded {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
    in_flight: usize,
    /// PCM buffers back from the thread.
    free: Vec<Vec<f32>>,
    /// The block being gathered.
    gathering: Vec<f32>,
}

fn stopped() -> MediaError {
    MediaError::encoder("encoding thread stopped")
}

impl Threaded {
    pub(crate) fn spawn<E: BlockEncoder + Send + 'static>(enc: E) -> Result<Self, MediaError> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(DEPTH);
        // Never holds more than DEPTH results: `encode` waits for one before queueing more.
        let (tx, done) = mpsc::channel::<Done>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("encode".into())
            .spawn(move || {
                let mut enc = Box::new(enc);
                let mut bytes = Vec::new();
                while let Ok(job) = rx.recv() {
                    if stop2.load(Ordering::Relaxed) {
                        return;
                    }
                    let msg = match job {
                        Job::Pcm(pcm) => {
                            let r = enc.encode(&pcm, &mut bytes).map(|()| bytes.split_off(0));
                            Done::Block(r, pcm)
                        }
                        Job::Finish => {
                            let r = enc.finish(&mut bytes).map(|p| (bytes, p));
                            let _ = tx.send(Done::Finished(r));
                            return;
                        }
                    };
                    if tx.send(msg).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| MediaError::encoder(format!("cannot start encoding thread: {e}")))?;
        Ok(Threaded {
            jobs: Some(jobs),
            done,
            stop,
            handle: Some(handle),
            in_flight: 0,
            free: Vec::with_capacity(DEPTH),
            gathering: Vec::with_capacity(BATCH),
        })
    }

    /// Waits for the oldest block in flight and writes its bytes.
    fn drain_one(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        match self.done.recv() {
            Ok(Done::Block(r, pcm)) => {
                self.in_flight -= 1;
                self.free.push(pcm);
                out.write_all(&r?)?;
                Ok(())
            }
            Ok(Done::Finished(_)) | Err(_) => Err(self.thread_error()),
        }
    }

    /// Why the thread went away: a panic, or (unexpectedly) none.
    fn thread_error(&mut self) -> MediaError {
        self.jobs = None;
        match self.handle.take().map(thread::JoinHandle::join) {
            Some(Err(_)) => MediaError::encoder("encoding thread panicked"),
            _ => stopped(),
        }
    }
}

impl Threaded {
    /// Hands the gathered block to the thread (after the oldest one's bytes, when
    /// [`DEPTH`] are in flight).
    fn send_gathered(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        if self.gathering.is_empty() {
            return Ok(());
        }
        if self.in_flight == DEPTH {
            self.drain_one(out)?;
        }
        let mut next = self.free.pop().unwrap_or_default();
        next.clear();
        let buf = std::mem::replace(&mut self.gathering, next);
        let sent = self.jobs.as_ref().map(|j| j.send(Job::Pcm(buf)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.thread_error());
        }
        self.in_flight += 1;
        Ok(())
    }
}

impl BlockEncoder for Threaded {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        self.gathering.extend_from_slice(pcm);
        if self.gathering.len() >= BATCH {
            self.send_gathered(out)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.send_gathered(out)?;
        while self.in_flight > 0 {
            self.drain_one(out)?;
        }
        let sent = self.jobs.as_ref().map(|j| j.send(Job::Finish));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.thread_error());
        }
        match self.done.recv() {
            Ok(Done::Finished(r)) => {
                let (bytes, patch) = r?;
                out.write_all(&bytes)?;
                Ok(patch)
            }
            Ok(Done::Block(..)) | Err(_) => Err(self.thread_error()),
        }
    }
}

impl Drop for Threaded {
    fn drop(&mut self) {
        // Skip whatever is still queued, close the queue, and wait for the block being
        // encoded (if any): the thread sends into an unbounded channel, so it cannot block.
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes each sample's bits; fails on a NaN; panics on infinity.
    struct Echo;
    impl BlockEncoder for Echo {
        fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
            for s in pcm {
                if s.is_nan() {
                    return Err(MediaError::encoder("nan"));
                }
                assert!(s.is_finite(), "infinite");
                out.write_all(&s.to_le_bytes())?;
            }
            Ok(())
        }
        fn finish(self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
            out.write_all(b"end")?;
            Ok(Some(Patch {
                offset: 1,
                bytes: vec![7],
            }))
        }
    }

    fn inline(blocks: &[Vec<f32>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e: Box<dyn BlockEncoder> = Box::new(Echo);
        for b in blocks {
            e.encode(b, &mut out).expect("ok");
        }
        e.finish(&mut out).expect("ok");
        out
    }

    #[test]
    fn same_bytes_in_same_order() {
        let blocks: Vec<Vec<f32>> = (0..50)
            .map(|i| (0..(i * 7 % 13)).map(|k| (i * 100 + k) as f32).collect())
            .collect();
        let mut out = Vec::new();
        let mut e: Box<dyn BlockEncoder> = Box::new(Threaded::spawn(Echo).expect("ok"));
        for b in &blocks {
            e.encode(b, &mut out).expect("ok");
        }
        let patch = e.finish(&mut out).expect("ok").expect("ok");
        assert_eq!((patch.offset, patch.bytes), (1, vec![7]));
        assert_eq!(out, inline(&blocks));
    }

    #[test]
    fn encoder_error_is_reported() {
        let mut out = Vec::new();
        let mut e: Box<dyn BlockEncoder> = Box::new(Threaded::spawn(Echo).expect("ok"));
        let mut r = e.encode(&[f32::NAN], &mut out);
        for _ in 0..2 * DEPTH {
            if r.is_err() {
                break;
            }
            r = e.encode(&[1.0], &mut out);
        }
        let r = r.and_then(|()| e.finish(&mut out).map(|_| ()));
        assert!(matches!(r, Err(MediaError::Encoder(_))), "{r:?}");
    }

    #[test]
    fn panic_is_reported_and_drop_does_not_hang() {
        let mut out = Vec::new();
        let mut e: Box<dyn BlockEncoder> = Box::new(Threaded::spawn(Echo).expect("ok"));
        let _ = e.encode(&[f32::INFINITY], &mut out);
        let r = e.finish(&mut out);
        assert!(r.is_err());
        // Dropped mid-stream with blocks queued.
        let mut e = Threaded::spawn(Echo).expect("ok");
        for _ in 0..DEPTH {
            e.encode(&[1.0; 1000], &mut out).expect("ok");
        }
        drop(e);
    }
}
