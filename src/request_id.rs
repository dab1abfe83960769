//! Request ids: the client's `X-Request-Id` when it is sane, else one made here; and the id of
//! the request the calling thread is working on, which every log line of that request carries.
//!
//! An id is kept inline (no allocation) and made from a per-thread random base and counter, so
//! ids are unique across threads and restarts without a shared counter. The "current request"
//! is a thread-local set while the request's future is polled ([`Scoped`]): HTTP threads run one
//! single-threaded runtime each, so whatever logs during that poll belongs to that request.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Longest request id taken from a client; a longer one is replaced.
pub const MAX_LEN: usize = 64;

/// A request id: 1 to [`MAX_LEN`] bytes of `A-Z a-z 0-9 - _ . : + / =` (safe in a header, a
/// log line and a JSON string without escaping).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_LEN],
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'+' | b'/' | b'=')
}

thread_local! {
    /// `(random base, requests numbered)` of this thread's made ids.
    static NEXT: Cell<(u64, u64)> = Cell::new((rand::random(), 0));
    static CURRENT: Cell<Option<RequestId>> = const { Cell::new(None) };
}

impl RequestId {
    /// The client's id, if it is one we can pass on as it is.
    pub fn parse(client: &[u8]) -> Option<Self> {
        if client.is_empty() || client.len() > MAX_LEN || !client.iter().all(|b| allowed(*b)) {
            return None;
        }
        let mut bytes = [0u8; MAX_LEN];
        bytes[..client.len()].copy_from_slice(client);
        Some(RequestId {
            len: client.len() as u8,
            bytes,
        })
    }

    /// A new id: 16 hex digits.
    pub fn make() -> Self {
        let n = NEXT.with(|c| {
            let (base, count) = c.get();
            c.set((base, count.wrapping_add(1)));
            base.wrapping_add(count)
        });
        let mut bytes = [0u8; MAX_LEN];
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in bytes.iter_mut().take(16).enumerate() {
            *b = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
        }
        RequestId { len: 16, bytes }
    }

    /// The client's id if sane, else a new one.
    pub fn from_client(client: Option<&[u8]>) -> Self {
        client.and_then(Self::parse).unwrap_or_else(Self::make)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

/// The id of the request the calling thread is working on, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.with(Cell::get)
}

/// Runs `f` with `id` as the current request id.
pub fn in_scope<T>(id: RequestId, f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.replace(Some(id)));
    let out = f();
    CURRENT.with(|c| c.set(before));
    out
}

/// A future whose polls run with its request id current (the inner future is already boxed, as
/// hyper's service futures are, so wrapping it costs no allocation).
pub struct Scoped<F> {
    id: RequestId,
    inner: F,
}

impl<F> Scoped<F> {
    /// `inner`, with `id` current whenever it runs.
    pub fn new(id: RequestId, inner: F) -> Self {
        Scoped { id, inner }
    }
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let id = self.id;
        in_scope(id, || Pin::new(&mut self.inner).poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_client_ids_are_kept() {
        let id = RequestId::from_client(Some(b"abc-123_X.y:z"));
        assert_eq!(id.as_str(), "abc-123_X.y:z");
    }

    #[test]
    fn other_client_ids_are_replaced() {
        for bad in [
            &b""[..],
            b"has space",
            b"quote\"",
            b"new\nline",
            &[b'a'; 65],
        ] {
            let id = RequestId::from_client(Some(bad));
            assert_eq!(id.as_str().len(), 16, "{bad:?}");
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn made_ids_differ() {
        let a = RequestId::make();
        let b = RequestId::make();
        assert_ne!(a, b);
        let other = std::thread::spawn(RequestId::make).join().expect("thread");
        assert_ne!(a, other);
    }

    #[test]
    fn the_current_id_is_set_only_in_scope() {
        let id = RequestId::make();
        assert_eq!(current(), None);
        in_scope(id, || assert_eq!(current(), Some(id)));
        assert_eq!(current(), None);
    }
}
