//! The HTTP/1.1 connection layer: accepts connections, serves each with hyper, logs every request,
//! and hands requests to the application.
//!
//! GET, HEAD and OPTIONS on the publish URI and on signed links go straight to their handlers;
//! everything else goes through the axum router. A 4 KiB Range on a published file is the
//! server's hottest path, and the router's per-request work (route match, boxed service clone,
//! request body boxing, extractor plumbing) was a measurable share of it.
//!
//! Idle connections are closed by one watchdog per connection (`idle`) rather than by
//! hyper's header-read timer, which arms and disarms a timer for every request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

use super::error::ApiError;
use super::log::{logged, Logged, Request as LoggedRequest};
use super::metrics::route_of;
use super::publish;
use crate::app::AppState;
use crate::metrics::Metrics;
use crate::request_id::{RequestId, Scoped};

/// The request id header, read from requests and set on every response.
pub const X_REQUEST_ID: &str = "x-request-id";

/// How long a stopping server waits for requests in flight before closing their connections
/// (a stalled client must not hold a restart forever; systemd's default stop timeout is 90 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Most bytes of request headers (names, values and their separators) the application takes;
/// past it a 431 in the contract's form. hyper's own limit ([`HYPER_MAX_HEADERS`], its read
/// buffer) is set well above, so that only truly huge heads meet hyper's bare 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most request header fields the application takes (hyper's former default); past it a 431.
pub const MAX_HEADER_COUNT: usize = 100;
/// Longest request target the application takes; past it a 414 (hyper's own limit is 64 KiB).
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Header fields hyper parses before it answers a bare 431 itself.
const HYPER_MAX_HEADERS: usize = 1000;

/// The application as the connection layer sees it: the fast path for public reads, the router
/// for the rest.
#[derive(Clone)]
pub struct Dispatch(Arc<Routes>);

/// One connection's service: the application and the connection's activity.
#[derive(Clone)]
struct ConnService {
    routes: Arc<Routes>,
    activity: Arc<Activity>,
}

/// What the idle watchdog of a connection looks at.
#[derive(Debug, Default)]
struct Activity {
    /// Requests begun (their headers read) on this connection.
    begun: AtomicU64,
    /// Requests whose response body is not finished yet.
    in_flight: AtomicU64,
    /// Bytes written to the socket: hyper finishes a body before its last bytes are written, so
    /// a response still draining to a slow reader shows here.
    written: AtomicU64,
    /// The last write found the socket full (the client is not reading).
    blocked: AtomicBool,
    /// Bytes read from the socket: an upload still arriving, however slowly.
    read: AtomicU64,
    /// The application is waiting for more of a request body (its last poll found none). hyper
    /// also polls the socket's read side while a response is computed, so a pending read alone
    /// says nothing; a pending *body* does: the request cannot go on without the client.
    awaiting_body: AtomicBool,
    /// Where the connection's requests are counted; `None` with `--no-metrics`. Held per
    /// connection so that a request clones no shared reference count.
    metrics: Option<Arc<Metrics>>,
}

/// The connection's socket, counting what is written to it.
struct Metered {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl Metered {
    fn count(&self, written: &Poll<std::io::Result<usize>>) {
        match written {
            Poll::Ready(Ok(n)) => {
                self.activity
                    .written
                    .fetch_add(*n as u64, Ordering::Relaxed);
                self.activity.blocked.store(false, Ordering::Relaxed);
            }
            Poll::Pending => self.activity.blocked.store(true, Ordering::Relaxed),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl AsyncRead for Metered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.tcp).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.activity.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.count(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.count(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// A request body that tells the idle watchdog when the application waits for it.
pub struct WatchedBody {
    inner: Incoming,
    activity: Arc<Activity>,
    route: crate::metrics::Route,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        self.activity
            .awaiting_body
            .store(r.is_pending(), Ordering::Relaxed);
        if let (Poll::Ready(Some(Ok(frame))), Some(m)) = (&r, &self.activity.metrics) {
            if let Some(d) = frame.data_ref() {
                m.received(self.route, d.len() as u64);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        // A body given up on is not waited for.
        self.activity.awaiting_body.store(false, Ordering::Relaxed);
    }
}

/// Held by a response body until it is finished or dropped: the request is in flight.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.begun.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(activity))
    }

    /// Where the request is counted, unless metrics are off.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.0.metrics.as_deref()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes when the connection has been idle for a whole period `every`: no request begun
/// and no byte read or written during it, and at its end either none in flight, a response
/// stuck on a full socket, or a request waiting for body bytes that do not come. A silent or
/// slow-header client is closed after at most two periods, as is a client that stopped reading
/// its response (nginx's `send_timeout`) or stopped sending its upload (nginx's
/// `client_body_timeout`); a response being computed (a long conversion), an upload that keeps
/// moving however slowly, or a response draining to a reader that keeps reading, is never cut.
async fn idle(activity: Arc<Activity>, every: Duration) {
    let seen = |a: &Activity| {
        (
            a.begun.load(Ordering::Relaxed),
            a.written.load(Ordering::Relaxed),
            a.read.load(Ordering::Relaxed),
        )
    };
    let mut last = seen(&activity);
    loop {
        tokio::time::sleep(every).await;
        let now = seen(&activity);
        let waiting_on_client = activity.in_flight.load(Ordering::Relaxed) == 0
            || activity.blocked.load(Ordering::Relaxed)
            || activity.awaiting_body.load(Ordering::Relaxed);
        if now == last && waiting_on_client {
            return;
        }
        last = now;
    }
}

struct Routes {
    state: AppState,
    router: Router,
}

impl Dispatch {
    /// Serves `router`'s application, with `state` for the public fast path.
    pub fn new(state: AppState, router: Router) -> Self {
        Dispatch(Arc::new(Routes { state, router }))
    }
}

/// A request the fast path answers itself.
#[derive(Debug, PartialEq, Eq)]
enum Fast<'a> {
    Publish(&'a str),
    Download(&'a str),
    Preflight,
}

/// The fast-path route of `method path`, if any. Only plain single segments qualify: a key that
/// needs percent-decoding, an empty one or a longer path goes to the router, which decodes it
/// or answers 404/405.
fn fast_route<'a>(method: &Method, path: &'a str) -> Option<Fast<'a>> {
    let (publish, key) = if let Some(k) = path.strip_prefix("/f/") {
        (true, k)
    } else if let Some(k) = path.strip_prefix("/download/") {
        (false, k)
    } else {
        return None;
    };
    if key.is_empty() || key.contains(['/', '%']) {
        return None;
    }
    match *method {
        Method::GET | Method::HEAD if publish => Some(Fast::Publish(key)),
        Method::GET | Method::HEAD => Some(Fast::Download(key)),
        Method::OPTIONS => Some(Fast::Preflight),
        _ => None,
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Logged>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Logged>;
    type Error = Infallible;
    type Future = Scoped<Answer>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let this = Arc::clone(&self.routes);
        let in_flight = InFlight::begin(&self.activity);
        let activity = Arc::clone(&self.activity);
        let client_id = req.headers().get(X_REQUEST_ID);
        let id = RequestId::from_client(client_id.map(HeaderValue::as_bytes));
        // The client's own header when kept as it is (a shared-bytes clone), else the made id.
        let id_header = match client_id {
            Some(v) if v.as_bytes() == id.as_str().as_bytes() => Some(v.clone()),
            _ => HeaderValue::from_str(id.as_str()).ok(),
        };
        let answer: Answer = Box::pin(async move {
            let start = Instant::now();
            let method = req.method().clone();
            // A cheap clone (shared bytes); the log line needs the path after the body is sent.
            let uri = req.uri().clone();
            let route = route_of(&method, uri.path());
            let request = LoggedRequest {
                method,
                uri,
                start,
                route,
                id,
            };
            if let Some(mut refused) = oversized(&req) {
                with_id(&mut refused, id_header);
                return Ok(logged(refused, request, in_flight));
            }
            let method = &request.method;
            let uri = &request.uri;
            let mut resp = match fast_route(method, uri.path()) {
                Some(Fast::Publish(key)) => {
                    publish::publish(&this.state, key, method, req.headers(), uri.query()).await
                }
                Some(Fast::Download(sid)) => {
                    publish::download(&this.state, sid, method, req.headers(), uri.query()).await
                }
                Some(Fast::Preflight) => publish::preflight().await,
                None => {
                    let mut router = this.router.clone();
                    let req = req.map(|inner| WatchedBody {
                        inner,
                        activity,
                        route,
                    });
                    match router.call(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
            };
            with_id(&mut resp, id_header);
            Ok(logged(resp, request, in_flight))
        });
        Scoped::new(id, answer)
    }
}

/// Sets the request id on an answer.
fn with_id(resp: &mut Response<axum::body::Body>, id: Option<HeaderValue>) {
    if let Some(v) = id {
        resp.headers_mut()
            .insert(header::HeaderName::from_static(X_REQUEST_ID), v);
    }
}

/// A contract-form 414 or 431 for a request whose target or headers pass the application's
/// limits; the connection is closed after it (the client sent more than it should, and may
/// still be sending).
fn oversized<B>(req: &Request<B>) -> Option<Response<axum::body::Body>> {
    let uri_len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let e = if uri_len > MAX_URI_BYTES {
        ApiError::new(StatusCode::URI_TOO_LONG, "uri too long").field(
            "path",
            format!("the request target must be at most {MAX_URI_BYTES} bytes"),
        )
    } else {
        let headers = req.headers();
        // As on the wire: "name: value\r\n".
        let bytes: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if headers.len() <= MAX_HEADER_COUNT && bytes <= MAX_HEADER_BYTES {
            return None;
        }
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        )
        .field(
            "headers",
            format!("at most {MAX_HEADER_COUNT} header fields of {MAX_HEADER_BYTES} bytes in all"),
        )
    };
    let mut resp = e.into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Some(resp)
}

/// Serves HTTP/1.1 on `listener` until `stop` completes, then stops accepting and waits for the
/// requests in flight to finish, [`SHUTDOWN_GRACE`] at most (idle keep-alive connections are
/// closed at once). A connection with no request begun, none in flight and no byte written for
/// a whole `idle_timeout` is closed.
pub async fn run(
    listener: TcpListener,
    dispatch: Dispatch,
    idle_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The idle watchdog bounds slow headers, at one timer per connection instead of one per
        // request.
        .header_read_timeout(None::<Duration>)
        // Our own, lower limits answer in the contract's form (`oversized`).
        .max_headers(HYPER_MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning on the error.
                    if !is_connection_error(&e) {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Responses go out whole in one write: no reason to let Nagle hold them.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity {
            metrics: dispatch.0.state.metrics.recording(),
            ..Activity::default()
        });
        let service = ConnService {
            routes: Arc::clone(&dispatch.0),
            activity: Arc::clone(&activity),
        };
        let io = TokioIo::new(Metered {
            tcp,
            activity: Arc::clone(&activity),
        });
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                // Nothing is in flight: dropping the connection closes it.
                () = idle(activity, idle_timeout) => {}
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        // Returning ends this thread's runtime, which drops (closes) the remaining connections.
        tracing::warn!(
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "requests still in flight at the end of the shutdown grace: closing them"
        );
    }
    Ok(())
}

/// Errors that concern one connection only (the peer went away before it was accepted).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_public_reads_take_the_fast_path() {
        assert_eq!(
            fast_route(&Method::GET, "/f/abc"),
            Some(Fast::Publish("abc"))
        );
        assert_eq!(
            fast_route(&Method::HEAD, "/download/abc"),
            Some(Fast::Download("abc"))
        );
        assert_eq!(
            fast_route(&Method::OPTIONS, "/f/abc"),
            Some(Fast::Preflight)
        );
    }

    const PERIOD: Duration = Duration::from_millis(50);

    /// A few bytes on the counter `of` every half period, six periods long.
    fn trickle(a: &Arc<Activity>, of: fn(&Activity) -> &AtomicU64) -> tokio::task::JoinHandle<()> {
        let a = Arc::clone(a);
        tokio::spawn(async move {
            for _ in 0..12 {
                of(&a).fetch_add(10, Ordering::Relaxed);
                tokio::time::sleep(PERIOD / 2).await;
            }
        })
    }

    #[tokio::test]
    async fn a_connection_with_nothing_happening_is_idle_within_two_periods() {
        let a = Arc::new(Activity::default());
        let started = std::time::Instant::now();
        idle(Arc::clone(&a), PERIOD).await;
        assert!(started.elapsed() < PERIOD * 3);
    }

    #[tokio::test]
    async fn bytes_still_being_written_keep_a_finished_response_alive() {
        let a = Arc::new(Activity::default());
        let writer = trickle(&a, |a| &a.written);
        let watched = tokio::time::timeout(PERIOD * 5, idle(Arc::clone(&a), PERIOD)).await;
        assert!(watched.is_err(), "closed while the response was draining");
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn a_response_stuck_on_a_client_that_stopped_reading_is_closed() {
        let a = Arc::new(Activity::default());
        let _request = InFlight::begin(&a);
        a.blocked.store(true, Ordering::Relaxed);
        let watched = tokio::time::timeout(PERIOD * 3, idle(Arc::clone(&a), PERIOD)).await;
        assert!(watched.is_ok(), "a stalled reader kept its connection");
    }

    #[tokio::test]
    async fn a_request_waiting_for_body_bytes_that_do_not_come_is_closed() {
        let a = Arc::new(Activity::default());
        let _request = InFlight::begin(&a);
        a.awaiting_body.store(true, Ordering::Relaxed);
        let watched = tokio::time::timeout(PERIOD * 3, idle(Arc::clone(&a), PERIOD)).await;
        assert!(watched.is_ok(), "a stalled upload kept its connection");
    }

    #[tokio::test]
    async fn an_upload_that_keeps_moving_slowly_is_never_idle() {
        let a = Arc::new(Activity::default());
        let _request = InFlight::begin(&a);
        a.awaiting_body.store(true, Ordering::Relaxed);
        let sender = trickle(&a, |a| &a.read);
        let watched = tokio::time::timeout(PERIOD * 5, idle(Arc::clone(&a), PERIOD)).await;
        assert!(watched.is_err(), "closed while the upload was moving");
        sender.await.expect("sender");
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_idle() {
        let a = Arc::new(Activity::default());
        let _request = InFlight::begin(&a);
        let watched = tokio::time::timeout(PERIOD * 5, idle(Arc::clone(&a), PERIOD)).await;
        assert!(watched.is_err(), "closed with a request in flight");
    }

    #[test]
    fn everything_else_goes_to_the_router() {
        for (m, p) in [
            (Method::GET, "/f/"),
            (Method::GET, "/f/a/b"),
            (Method::GET, "/f/caf%C3%A9"),
            (Method::POST, "/f/abc"),
            (Method::DELETE, "/download/abc"),
            (Method::GET, "/v1/files"),
            (Method::GET, "/fx/abc"),
        ] {
            assert_eq!(fast_route(&m, p), None, "{m} {p}");
        }
    }
}
