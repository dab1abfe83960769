//! The copy for the node's cache of a whole read on its way to a client, made without slowing
//! the client: the chunks are kept (shared, not copied) while the client is served and handed
//! to the cache's writer when the read ends, so the disk write does not compete with the
//! transfer for CPU. A node-wide budget bounds the bytes kept; past it the copy is handed over
//! as the chunks come, and a copy that then falls behind is abandoned (never the client).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::blob::ByteStream;

/// Batches queued for the copy once it is handed over as the chunks come, before it is
/// abandoned.
const QUEUE: usize = 64;

/// Chunks for the copy, with the budget their bytes hold until the copy has taken them.
type Batch = (Vec<Bytes>, Option<OwnedSemaphorePermit>);

/// Where the copy goes: called once, with the copy's stream, or with `None` when the read
/// failed or its client went before any of it was handed over.
pub type Start = Box<dyn FnOnce(Option<ByteStream>) + Send>;

/// `body` (`len` bytes), with its copy given to `start` (see the module doc); `budget` counts
/// bytes.
pub fn tee(body: ByteStream, len: u64, budget: Arc<Semaphore>, start: Start) -> ByteStream {
    Box::pin(Tee {
        body,
        left: len,
        budget,
        state: State::Keeping {
            start: Some(start),
            kept: Vec::new(),
            permit: None,
        },
    })
}

enum State {
    /// The copy's chunks so far, not handed over yet.
    Keeping {
        start: Option<Start>,
        kept: Vec<Bytes>,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// Handed over: each chunk goes to the copy as it comes.
    Passing(mpsc::Sender<Batch>),
    /// Handed over whole, or abandoned.
    Done,
}

struct Tee {
    body: ByteStream,
    /// Bytes still to come: the copy is handed over with the last of them (hyper does not ask
    /// a body for its end once its `Content-Length` is sent).
    left: u64,
    budget: Arc<Semaphore>,
    state: State,
}

impl Tee {
    fn keep(&mut self, chunk: &Bytes) {
        match &mut self.state {
            State::Keeping { kept, permit, .. } => {
                let more = u32::try_from(chunk.len())
                    .ok()
                    .and_then(|n| Arc::clone(&self.budget).try_acquire_many_owned(n).ok());
                if let Some(more) = more {
                    match permit {
                        Some(p) => p.merge(more),
                        None => *permit = Some(more),
                    }
                    kept.push(chunk.clone());
                } else {
                    self.hand_over(Some(chunk.clone()), QUEUE);
                }
            }
            State::Passing(tx) => {
                if tx.try_send((vec![chunk.clone()], None)).is_err() {
                    self.state = State::Done;
                }
            }
            State::Done => {}
        }
    }

    /// Gives the copy what is kept (and `next`); it stays open for more when `queue` allows
    /// more than that one batch.
    fn hand_over(&mut self, next: Option<Bytes>, queue: usize) {
        let State::Keeping {
            start,
            kept,
            permit,
        } = &mut self.state
        else {
            return;
        };
        let (tx, rx) = mpsc::channel(queue);
        let mut kept = std::mem::take(kept);
        kept.extend(next);
        // A fresh channel has room for one batch.
        let _ = tx.try_send((kept, permit.take()));
        if let Some(start) = start.take() {
            start(Some(copy(rx)));
        }
        self.state = if queue > 1 {
            State::Passing(tx)
        } else {
            State::Done
        };
    }

    /// The read is complete: the copy gets the rest.
    fn finish(&mut self) {
        self.hand_over(None, 1);
        self.state = State::Done;
    }

    fn abandon(&mut self) {
        if let State::Keeping { start, .. } = &mut self.state {
            if let Some(start) = start.take() {
                start(None);
            }
        }
        // A copy already handed over sees its chunks end short.
        self.state = State::Done;
    }
}

impl Stream for Tee {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.body.poll_next_unpin(cx));
        match &item {
            Some(Ok(chunk)) => {
                self.keep(chunk);
                self.left = self.left.saturating_sub(chunk.len() as u64);
                if self.left == 0 {
                    self.finish();
                }
            }
            Some(Err(_)) => self.abandon(),
            None => self.finish(),
        }
        Poll::Ready(item)
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// The copy's chunks as the tee hands them over; a batch's budget is given back once its
/// chunks are taken.
fn copy(rx: mpsc::Receiver<Batch>) -> ByteStream {
    let batch: (std::vec::IntoIter<Bytes>, Option<OwnedSemaphorePermit>) =
        (Vec::new().into_iter(), None);
    Box::pin(futures_util::stream::unfold(
        (rx, batch),
        |(mut rx, (mut chunks, mut permit))| async move {
            loop {
                if let Some(chunk) = chunks.next() {
                    return Some((Ok(chunk), (rx, (chunks, permit))));
                }
                drop(permit.take());
                let (next, p) = rx.recv().await?;
                chunks = next.into_iter();
                permit = p;
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    type Got = Arc<Mutex<Option<Option<ByteStream>>>>;

    fn body(chunks: Vec<std::io::Result<Bytes>>) -> ByteStream {
        Box::pin(futures_util::stream::iter(chunks))
    }

    fn started() -> (Got, Start) {
        let got: Got = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&got);
        let start: Start = Box::new(move |copy| {
            if let Ok(mut g) = slot.lock() {
                *g = Some(copy);
            }
        });
        (got, start)
    }

    fn take(got: &Got) -> Option<Option<ByteStream>> {
        got.lock().ok().and_then(|mut g| g.take())
    }

    async fn collect(s: ByteStream) -> Vec<u8> {
        s.filter_map(|c| async move { c.ok() })
            .collect::<Vec<_>>()
            .await
            .concat()
    }

    fn chunks() -> Vec<std::io::Result<Bytes>> {
        vec![Ok(Bytes::from_static(b"ab")), Ok(Bytes::from_static(b"cd"))]
    }

    #[tokio::test]
    async fn the_copy_is_kept_until_the_client_has_the_last_byte() {
        let budget = Arc::new(Semaphore::new(1024));
        let (got, start) = started();
        let mut out = tee(body(chunks()), 4, Arc::clone(&budget), start);
        assert!(out.next().await.is_some());
        assert!(
            take(&got).is_none(),
            "nothing handed over before the last byte"
        );
        assert_eq!(
            budget.available_permits(),
            1022,
            "the kept bytes hold the budget"
        );
        assert!(out.next().await.is_some());
        // hyper does not ask for the end of a body whose length it has sent.
        drop(out);
        let copy = take(&got).flatten();
        assert_eq!(collect(copy.expect("handed over")).await, b"abcd");
        assert_eq!(budget.available_permits(), 1024, "given back");
    }

    #[tokio::test]
    async fn past_the_budget_the_copy_is_handed_over_as_it_comes() {
        let (got, start) = started();
        let out = tee(body(chunks()), 4, Arc::new(Semaphore::new(3)), start);
        assert_eq!(collect(out).await, b"abcd");
        let copy = take(&got).flatten();
        assert_eq!(collect(copy.expect("handed over")).await, b"abcd");
    }

    #[tokio::test]
    async fn a_failed_read_or_a_client_gone_gives_no_copy() {
        let (got, start) = started();
        let failed = body(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]);
        let _ = collect(tee(failed, 4, Arc::new(Semaphore::new(1024)), start)).await;
        assert!(matches!(take(&got), Some(None)));

        let (got, start) = started();
        let mut out = tee(body(chunks()), 4, Arc::new(Semaphore::new(1024)), start);
        assert!(out.next().await.is_some());
        drop(out);
        assert!(matches!(take(&got), Some(None)));
    }
}
