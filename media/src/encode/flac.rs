//! FLAC via `flacenc` (pure Rust), 16-bit, fixed 4096-frame blocks, streamed
//! frame by frame.
//!
//! STREAMINFO goes out first. It states the total length when the pipeline
//! promises one (the source's declared length, which the pipeline then delivers
//! exactly: players show the duration and can seek from the first byte); frame
//! sizes and MD5 stay "unknown" (allowed by the format: they need the encoded
//! audio). Seekable outputs get it patched with the real figures at the end.

use std::io::Write;
use std::sync::mpsc;
use std::thread;

use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, StreamInfo};
use flacenc::config;
use flacenc::error::Verify;
use flacenc::source::{Fill, FrameBuf};

use super::{to_i16, BlockEncoder, Patch, Plan};
use crate::MediaError;

/// Frames per FLAC block; 4096 is the reference encoder's default for 44.1/48 kHz.
const BLOCK: usize = 4096;

pub(crate) struct FlacEncoder {
    workers: Vec<Worker>,
    channels: usize,
    rate: u32,
    /// The block being filled (16-bit samples widened to i32, interleaved).
    pending: Vec<i32>,
    /// Sample buffers handed back by the workers, reused for the next blocks.
    free: Vec<Vec<i32>>,
    /// Blocks submitted / written so far; block `i` goes to worker `i % workers.len()`,
    /// so reading results round-robin from `written` keeps the output in order.
    submitted: usize,
    written: usize,
    total: u64,
    min_frame: u32,
    max_frame: u32,
    /// The frame count the pipeline promises, stated in the first STREAMINFO.
    expected: Option<u64>,
    header_written: bool,
}

/// One block for a worker: its frame number and interleaved samples.
struct Job {
    frame_no: usize,
    pcm: Vec<i32>,
}

/// A worker's answer: the encoded frame and the sample buffer, for reuse.
type Done = Result<(Vec<u8>, Vec<i32>), MediaError>;

/// An encoding thread. FLAC frames are independent, so blocks are spread over the
/// workers and their frames written back in submission order: the bytes are those
/// of a single-threaded encoder.
struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    handle: Option<thread::JoinHandle<()>>,
}

/// At most this many blocks wait in or for the workers (bounded memory: a few
/// 4096-frame blocks per worker).
const IN_FLIGHT_PER_WORKER: usize = 2;

impl Worker {
    fn spawn(
        cfg: flacenc::error::Verified<config::Encoder>,
        info: StreamInfo,
        channels: usize,
    ) -> Result<Self, MediaError> {
        let mut fb = FrameBuf::with_size(channels, BLOCK).map_err(flac_err)?;
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Done>();
        let handle = thread::Builder::new()
            .name("flac-encode".into())
            .spawn(move || {
                let mut sink = MemSink::<u8>::new();
                for job in job_rx {
                    let r = encode_block(&cfg, &info, &mut fb, &mut sink, &job);
                    if done_tx.send(r.map(|b| (b, job.pcm))).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Worker {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        })
    }
}

fn encode_block(
    cfg: &flacenc::error::Verified<config::Encoder>,
    info: &StreamInfo,
    fb: &mut FrameBuf,
    sink: &mut MemSink<u8>,
    job: &Job,
) -> Result<Vec<u8>, MediaError> {
    fb.fill_interleaved(&job.pcm).map_err(flac_err)?;
    let frame = flacenc::encode_fixed_size_frame(cfg, fb, job.frame_no, info).map_err(flac_err)?;
    sink.clear();
    frame.write(sink).map_err(flac_err)?;
    Ok(sink.as_slice().to_vec())
}

impl Drop for FlacEncoder {
    fn drop(&mut self) {
        // Closing the job queues ends the workers once their current block is done
        // (cancellation or an error mid-stream included).
        for w in &mut self.workers {
            w.jobs = None;
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn worker_gone() -> MediaError {
    MediaError::encoder("flac: encoding thread stopped")
}

fn flac_err(e: impl std::fmt::Debug) -> MediaError {
    MediaError::encoder(format!("flac: {e:?}"))
}

/// The STREAMINFO metadata block (header included) as FLAC §8.2 lays it out.
/// `total` is the stream's length in frames (0: unknown); frame sizes of 0 mean
/// unknown; the MD5 is left "not computed".
fn streaminfo(rate: u32, channels: usize, min_frame: u32, max_frame: u32, total: u64) -> [u8; 38] {
    let mut b = [0u8; 38];
    b[0] = 0x80; // last metadata block, type 0 = STREAMINFO
    b[1..4].copy_from_slice(&[0, 0, 34]);
    // With fixed-size blocks only the last may be shorter, and it does not count
    // towards the minimum unless it is the only one (§8.2).
    let min_block = if total > 0 && total < BLOCK as u64 {
        total as u16
    } else {
        BLOCK as u16
    };
    b[4..6].copy_from_slice(&min_block.to_be_bytes());
    b[6..8].copy_from_slice(&(BLOCK as u16).to_be_bytes());
    b[8..11].copy_from_slice(&min_frame.to_be_bytes()[1..4]);
    b[11..14].copy_from_slice(&max_frame.to_be_bytes()[1..4]);
    // 20 bits rate, 3 bits channels-1, 5 bits bps-1, 36 bits total samples.
    let packed: u64 = (u64::from(rate) << 44)
        | (((channels as u64) - 1) << 41)
        | (15u64 << 36)
        | (total & 0xF_FFFF_FFFF);
    b[14..22].copy_from_slice(&packed.to_be_bytes());
    // 16 bytes MD5 left zero: "not computed".
    b
}

impl FlacEncoder {
    /// An encoder for `plan`; `expected` is the exact frame count it will be given,
    /// when known, and goes into the STREAMINFO written up front.
    pub(crate) fn new(plan: &Plan, expected: Option<u64>) -> Result<Self, MediaError> {
        let channels = usize::from(plan.channels);
        let mut c = config::Encoder::default();
        c.block_size = BLOCK;
        // Left/side and right/side rarely beat mid/side by much but each costs a full
        // subframe search; keeping independent + mid/side halves the stereo work.
        c.stereo_coding.use_leftside = false;
        c.stereo_coding.use_rightside = false;
        // Fixed predictors only (like `flac -2`): flacenc's LPC search leans on f64
        // `mul_add`, which without an FMA target feature is a libm call per
        // operation and made us 4-5x slower than ffmpeg; fixed-only runs at ~1.2x
        // ffmpeg's time with ~14% larger files on music (speech loses less).
        c.subframe_coding.qlpc.lpc_order = 8;
        c.subframe_coding.use_lpc = false;
        let cfg = c.into_verified().map_err(|(_, e)| flac_err(e))?;
        let info = StreamInfo::new(plan.rate as usize, channels, 16).map_err(flac_err)?;
        // Two encoding threads keep both cores of a small box busy while this thread
        // decodes; more would only add memory (the server runs several conversions).
        let n = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2);
        let workers = (0..n)
            .map(|_| Worker::spawn(cfg.clone(), info.clone(), channels))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FlacEncoder {
            workers,
            channels,
            rate: plan.rate,
            pending: Vec::with_capacity(BLOCK * channels),
            free: Vec::new(),
            submitted: 0,
            written: 0,
            total: 0,
            min_frame: u32::MAX,
            max_frame: 0,
            expected,
            header_written: false,
        })
    }

    fn write_header(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        if !self.header_written {
            out.write_all(b"fLaC")?;
            // 36 bits of total samples: longer streams (over 19 days at 96 kHz)
            // say "unknown" rather than a wrapped length.
            let total = self.expected.filter(|&n| n < 1 << 36).unwrap_or(0);
            out.write_all(&streaminfo(self.rate, self.channels, 0, 0, total))?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the pending block to its worker, writing finished frames as they come.
    fn submit(&mut self, out: &mut dyn Write) -> Result<(), MediaError> {
        let frames = self.pending.len() / self.channels;
        if frames == 0 {
            return Ok(());
        }
        let n = self.workers.len();
        if self.submitted - self.written >= IN_FLIGHT_PER_WORKER * n {
            self.write_next(out, true)?;
        }
        let fresh = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK * self.channels));
        let pcm = std::mem::replace(&mut self.pending, fresh);
        let job = Job {
            frame_no: self.submitted,
            pcm,
        };
        let w = &self.workers[self.submitted % n];
        w.jobs
            .as_ref()
            .ok_or_else(worker_gone)?
            .send(job)
            .map_err(|_| worker_gone())?;
        self.submitted += 1;
        self.total += frames as u64;
        while self.written < self.submitted && self.write_next(out, false)? {}
        Ok(())
    }

    /// Writes the next frame in order; `wait` blocks for it, otherwise returns
    /// `false` when it is not ready yet.
    fn write_next(&mut self, out: &mut dyn Write, wait: bool) -> Result<bool, MediaError> {
        let rx = &self.workers[self.written % self.workers.len()].done;
        let done = if wait {
            rx.recv().map_err(|_| worker_gone())?
        } else {
            match rx.try_recv() {
                Ok(d) => d,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(worker_gone()),
            }
        };
        let (bytes, mut pcm) = done?;
        out.write_all(&bytes)?;
        let len = bytes.len() as u32;
        self.min_frame = self.min_frame.min(len);
        self.max_frame = self.max_frame.max(len);
        self.written += 1;
        pcm.clear();
        self.free.push(pcm);
        Ok(true)
    }
}

impl BlockEncoder for FlacEncoder {
    fn encode(&mut self, pcm: &[f32], out: &mut dyn Write) -> Result<(), MediaError> {
        self.write_header(out)?;
        let block_samples = BLOCK * self.channels;
        let mut rest = pcm;
        while !rest.is_empty() {
            let room = block_samples - self.pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.pending
                .extend(now.iter().map(|&s| i32::from(to_i16(s))));
            rest = later;
            if self.pending.len() == block_samples {
                self.submit(out)?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, out: &mut dyn Write) -> Result<Option<Patch>, MediaError> {
        self.write_header(out)?;
        self.submit(out)?;
        while self.written < self.submitted {
            self.write_next(out, true)?;
        }
        let min_frame = if self.min_frame == u32::MAX {
            0
        } else {
            self.min_frame
        };
        let total = if self.total < 1 << 36 { self.total } else { 0 };
        let si = streaminfo(self.rate, self.channels, min_frame, self.max_frame, total);
        Ok(Some(Patch {
            offset: 4,
            bytes: si.to_vec(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AudioFormat;

    /// (min block, max block, rate, channels, bits, total samples) from a STREAMINFO block.
    fn fields(si: &[u8]) -> (u16, u16, u32, u32, u32, u64) {
        let packed = u64::from_be_bytes(si[14..22].try_into().expect("8 bytes"));
        (
            u16::from_be_bytes([si[4], si[5]]),
            u16::from_be_bytes([si[6], si[7]]),
            (packed >> 44) as u32,
            ((packed >> 41) & 7) as u32 + 1,
            ((packed >> 36) & 31) as u32 + 1,
            packed & 0xF_FFFF_FFFF,
        )
    }

    fn encode(channels: u16, frames: usize, expected: Option<u64>) -> (Vec<u8>, Patch) {
        let plan = Plan {
            format: AudioFormat::Flac,
            rate: 44_100,
            channels,
            bitrate_kbps: None,
        };
        let mut enc: Box<dyn BlockEncoder> =
            Box::new(FlacEncoder::new(&plan, expected).expect("encoder"));
        let pcm: Vec<f32> = (0..frames * usize::from(channels))
            .map(|i| (i as f32 * 0.01).sin() * 0.3)
            .collect();
        let mut out = Vec::new();
        for part in pcm.chunks(1000 * usize::from(channels)) {
            enc.encode(part, &mut out).expect("encode");
        }
        let patch = enc.finish(&mut out).expect("finish").expect("a patch");
        (out, patch)
    }

    #[test]
    fn streaminfo_states_the_promised_length_up_front() {
        for (channels, frames) in [(2u16, 44_100 * 3 + 17), (1, 4096), (1, 100), (2, 8192)] {
            let (out, patch) = encode(channels, frames, Some(frames as u64));
            assert_eq!(&out[..4], b"fLaC");
            let min_block = if frames < BLOCK { frames as u16 } else { 4096 };
            let up_front = fields(&out[4..42]);
            assert_eq!(
                up_front,
                (
                    min_block,
                    4096,
                    44_100,
                    u32::from(channels),
                    16,
                    frames as u64
                ),
                "{channels} ch, {frames} frames"
            );
            // The end-of-stream figures agree on everything but the frame sizes,
            // which only the encoded audio tells.
            assert_eq!(patch.offset, 4);
            assert_eq!(fields(&patch.bytes), up_front);
            assert_eq!(out[12..18], [0; 6], "frame sizes unknown up front");
            assert_ne!(patch.bytes[8..14], [0; 6]);
        }
    }

    #[test]
    fn unknown_length_says_zero_samples() {
        let (out, patch) = encode(1, 5000, None);
        assert_eq!(fields(&out[4..42]).5, 0);
        assert_eq!(fields(&patch.bytes).5, 5000);
    }

    #[test]
    fn lengths_beyond_36_bits_say_unknown() {
        let (out, _) = encode(1, 10, Some(1 << 36));
        assert_eq!(fields(&out[4..42]).5, 0);
    }
}
