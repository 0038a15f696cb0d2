//! The HTTP/1.1 connections of the gRPC port (gRPC-Web callers: browsers,
//! `curl`). HTTP/1.1 has neither PING nor GOAWAY, and carries one request
//! at a time, so the port's limits take this form here:
//!
//! - the head of the first request must arrive within
//!   `server.handshake_timeout` of the accept (as TLS and the HTTP/2
//!   preface must), and the head of every later one within it of its
//!   first byte: a client cannot hold a connection slot by trickling;
//! - a connection with no request for `server.keepalive_interval` +
//!   `server.keepalive_timeout` after its last answer is closed (the time
//!   an HTTP/2 connection has to answer a PING);
//! - at `server.max_connection_age` (and at shutdown) the next answer
//!   carries `Connection: close`, so the client reconnects through the
//!   Service without a request lost to a race with our close; a call still
//!   running `server.max_connection_age_grace` after the age is cut;
//! - a caller holds one connection per call in flight, counted against
//!   `server.max_connections` like any other.
//!
//! hyper's own header-read timeout is off: it restarts at every answer, so
//! it cannot tell an idle connection from a trickled request head.

use std::{
    convert::Infallible,
    future::{Future, poll_fn},
    io,
    pin::{Pin, pin},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::{
    Request, Response,
    body::Incoming,
    header::{CONNECTION, HeaderValue},
};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::watch,
    time::Instant,
};
use tonic::body::Body;

use super::{calls::Calls, lifetime::Connections};
use crate::metrics::ConnectionEnd;

/// The time limits of an HTTP/1.1 connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// `server.handshake_timeout`: for each request's head.
    pub(super) head: Duration,
    /// `server.keepalive_interval` + `server.keepalive_timeout`.
    pub(super) idle: Duration,
    /// `server.max_connection_age_grace`.
    pub(super) age_grace: Duration,
}

/// Where the connection stands between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Accepted then; its first request's head not complete yet.
    Opening(Instant),
    /// Its last answer ended then; no byte of a next request yet.
    Idle(Instant),
    /// A next request's first byte came then; its head not complete yet.
    Head(Instant),
    /// A request is being answered.
    Busy,
}

/// What the connection's reads, its service and its driver share. All three
/// run in the connection's task, so a change is seen at the driver's next
/// look, within the same poll.
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// The age or the shutdown came: the next answer closes the connection.
    closing: AtomicBool,
}

impl Activity {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: an idle connection's next request has begun.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// When the connection must be closed if nothing changes, and why.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, ConnectionEnd)> {
        match self.phase() {
            Phase::Opening(at) | Phase::Head(at) => {
                Some((at + limits.head, ConnectionEnd::Handshake))
            }
            Phase::Idle(at) => Some((at + limits.idle, ConnectionEnd::Idle)),
            Phase::Busy => None,
        }
    }
}

/// Serves HTTP/1.1 on `io`, accepted at `opened`, until the client leaves,
/// a limit passes, `stopping` turns true or `ends_at` passes (then the
/// next answer closes it). Returns why it closed.
pub(super) async fn serve<IO>(
    connections: &Connections,
    io: IO,
    opened: Instant,
    ends_at: Instant,
    stopping: &mut watch::Receiver<bool>,
) -> ConnectionEnd
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = connections.http1_limits();
    let activity = Arc::new(Activity {
        phase: Mutex::new(Phase::Opening(opened)),
        closing: AtomicBool::new(false),
    });
    let service = Http1Calls {
        calls: connections.calls(),
        activity: Arc::clone(&activity),
    };
    let io = TokioIo::new(Watched {
        io,
        activity: Arc::clone(&activity),
    });
    let mut conn = pin!(connections.http1().serve_connection(io, service));
    let mut limit = pin!(tokio::time::sleep_until(ends_at));
    let mut aged = pin!(tokio::time::sleep_until(ends_at));
    let mut stop = pin!(stopping.wait_for(|stop| *stop));
    // When the age came: calls still running a grace later are cut.
    let mut cut_at: Option<Instant> = None;
    let mut stopped = false;
    poll_fn(|cx| {
        if cut_at.is_none() && aged.as_mut().poll(cx).is_ready() {
            activity.closing.store(true, Ordering::Relaxed);
            cut_at = Some(Instant::now() + limits.age_grace);
        }
        if !stopped && stop.as_mut().poll(cx).is_ready() {
            stopped = true;
            activity.closing.store(true, Ordering::Relaxed);
            // Closes an idle connection at once, a busy one after its
            // answer; the server's shutdown grace bounds the rest.
            conn.as_mut().graceful_shutdown();
        }
        if let Poll::Ready(served) = conn.as_mut().poll(cx) {
            if let Err(error) = served {
                tracing::debug!(%error, "HTTP/1.1 connection ended with an error");
            }
            return Poll::Ready(if stopped {
                ConnectionEnd::Shutdown
            } else if cut_at.is_some() {
                ConnectionEnd::Age
            } else if let Phase::Opening(_) = activity.phase() {
                // Never a complete request: a client that spoke something
                // else, or gave up.
                ConnectionEnd::Handshake
            } else {
                ConnectionEnd::Client
            });
        }
        let cut = cut_at.map(|at| (at, ConnectionEnd::Age));
        let next = match (activity.deadline(&limits), cut) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some((at, end)) = next {
            if limit.deadline() != at {
                limit.as_mut().reset(at);
            }
            if limit.as_mut().poll(cx).is_ready() {
                tracing::debug!(reason = end.as_str(), "closing an HTTP/1.1 connection");
                return Poll::Ready(end);
            }
        }
        Poll::Pending
    })
    .await
}

/// The port's services on an HTTP/1.1 connection: each request makes the
/// connection busy until its answer's body is done, and an answer after
/// the age or the shutdown says `Connection: close` (hyper then closes).
struct Http1Calls {
    calls: Calls,
    activity: Arc<Activity>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Http1Calls {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        self.activity.set(Phase::Busy);
        let answer = self.calls.call(request);
        let activity = Arc::clone(&self.activity);
        Box::pin(async move {
            let mut response = answer.await?;
            if activity.closing.load(Ordering::Relaxed) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| {
                Body::new(Answering {
                    body,
                    _idle: IdleOnDrop(activity),
                })
            }))
        })
    }
}

/// Turns the connection idle when the answer is done (hyper drops the body
/// once it has written it all, or when the client went away).
struct IdleOnDrop(Arc<Activity>);

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        self.0.set(Phase::Idle(Instant::now()));
    }
}

pin_project_lite::pin_project! {
    /// An answer's body, holding the connection busy while it lives.
    struct Answering {
        #[pin]
        body: Body,
        _idle: IdleOnDrop,
    }
}

impl http_body::Body for Answering {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The connection's socket, noting when an idle connection's next request
/// begins (its first byte).
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
