//! One structured log line per request, written when the response body is finished (or dropped):
//! method, path (never the query, which may carry a signature), status, bytes sent, duration,
//! request id; and, at the same moment, the request's metrics.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::server::InFlight;
use crate::logline::{access_line, AccessLine, ACCESS_TARGET};
use crate::metrics::Route;
use crate::request_id::RequestId;

/// What the log line and the metrics say about the request.
pub struct Request {
    pub method: Method,
    /// The request's URI; only its path is logged.
    pub uri: Uri,
    /// When its headers were read.
    pub start: Instant,
    pub route: Route,
    pub id: RequestId,
}

/// A response body that writes the request's log line when it is finished or dropped.
pub struct Logged {
    inner: Body,
    request: Request,
    status: u16,
    bytes: u64,
    /// Content-Length when known: hyper stops polling once it has sent that many bytes.
    expected: Option<u64>,
    complete: bool,
    /// Keeps the connection's idle watchdog off while the response is being sent.
    _in_flight: InFlight,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let took = self.request.start.elapsed();
        if let Some(m) = self._in_flight.metrics() {
            m.request(self.request.route, self.status, self.bytes, took);
        }
        // The one event per request skips tracing's dispatch (see `logline`), but not its filter.
        if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
            return;
        }
        access_line(&AccessLine {
            method: self.request.method.as_str(),
            path: self.request.uri.path(),
            status: self.status,
            bytes: self.bytes,
            duration_us: u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            complete: self.complete || self.expected == Some(self.bytes),
            request_id: self.request.id.as_str(),
        });
    }
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => this.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps `resp` so that its log line is written once it has been sent (or abandoned).
pub fn logged(resp: Response, request: Request, in_flight: InFlight) -> Response<Logged> {
    let status = resp.status().as_u16();
    // The length hyper will send: the header if set, else the body's exact size.
    let expected = resp
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| http_body::Body::size_hint(resp.body()).exact());
    resp.map(|inner| Logged {
        inner,
        request,
        status,
        bytes: 0,
        expected,
        complete: false,
        _in_flight: in_flight,
    })
}
