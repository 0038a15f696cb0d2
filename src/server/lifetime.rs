//! One client connection from accept to close: TLS and the HTTP/2 preface
//! within `server.handshake_timeout`, then HTTP/2 until the client leaves,
//! the server stops, or the connection reaches its age: then GOAWAY, and the
//! calls in flight get `server.max_connection_age_grace` to finish. A
//! connection whose first bytes are no HTTP/2 preface (or that agreed on
//! `http/1.1` through ALPN) is served as HTTP/1.1 ([`super::http1`]).
//!
//! The age is enforced here rather than by tonic's `max_connection_age`,
//! which (tonic 0.14), when a grace is set, closes the connection at age +
//! grace without any GOAWAY first: clients would see their calls fail
//! instead of moving to a new connection.

use std::{future::Future, io, sync::Arc, time::Duration};

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, watch},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tonic::service::Routes;

use super::{
    MAX_HEADER_LIST_BYTES, ServeError,
    calls::Calls,
    connection::{CopySmallWrites, Spoken, by_alpn, sniff},
    http1 as h1,
};
use crate::{
    config::ServerSettings,
    metrics::{ConnectionEnd, Metrics},
};

/// How every connection of the port is served.
pub(super) struct Connections {
    calls: Calls,
    http2: http2::Builder<TokioExecutor>,
    http1: http1::Builder,
    http1_limits: h1::Limits,
    tls: Option<TlsAcceptor>,
    max_connections: usize,
    handshake_timeout: Duration,
    max_age: Duration,
    age_grace: Duration,
    metrics: Metrics,
}

/// One open connection in the metrics: counted open while it lives, and
/// closed for `end` when dropped (a connection the shutdown grace cuts is
/// dropped with the default, `Shutdown`).
struct Open {
    metrics: Metrics,
    end: ConnectionEnd,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.end);
    }
}

impl Connections {
    /// What `server` asks for, serving `routes`.
    pub(super) fn new(
        server: &ServerSettings,
        routes: Routes,
        metrics: Metrics,
    ) -> Result<Self, ServeError> {
        let tls = match server.tls.settings() {
            Some(files) => Some(TlsAcceptor::from(
                files.server_config().map_err(ServeError::tls)?,
            )),
            None => None,
        };
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEADER_LIST_BYTES)
            .max_concurrent_streams(*server.max_concurrent_streams)
            .keep_alive_interval(*server.keepalive_interval)
            .keep_alive_timeout(*server.keepalive_timeout);
        let mut http1 = http1::Builder::new();
        // Our own limits instead (`super::http1`).
        http1.timer(TokioTimer::new()).header_read_timeout(None);
        Ok(Self {
            calls: Calls::new(routes),
            http2,
            http1,
            http1_limits: h1::Limits {
                head: *server.handshake_timeout,
                idle: *server.keepalive_interval + *server.keepalive_timeout,
                age_grace: *server.max_connection_age_grace,
            },
            tls,
            max_connections: *server.max_connections,
            handshake_timeout: *server.handshake_timeout,
            max_age: *server.max_connection_age,
            age_grace: *server.max_connection_age_grace,
            metrics,
        })
    }

    pub(super) fn max_connections(&self) -> usize {
        self.max_connections
    }

    pub(super) fn calls(&self) -> Calls {
        self.calls.clone()
    }

    pub(super) fn http1(&self) -> &http1::Builder {
        &self.http1
    }

    pub(super) fn http1_limits(&self) -> h1::Limits {
        self.http1_limits
    }

    /// Serves one accepted connection; `_slot` is its place among
    /// `server.max_connections`, given back when it closes.
    pub(super) async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        _slot: OwnedSemaphorePermit,
        mut stopping: watch::Receiver<bool>,
    ) {
        let opened = Instant::now();
        // ±10 %, so that connections opened together (a client fleet
        // restarting) do not all reconnect at the same moment.
        let ends_at = opened + self.max_age.mul_f64(0.9 + 0.2 * fastrand::f64());
        self.metrics.connection_opened();
        let mut open = Open {
            metrics: self.metrics.clone(),
            end: ConnectionEnd::Shutdown,
        };
        let tcp = CopySmallWrites(tcp);
        open.end = match &self.tls {
            None => match self.handshake(sniff(tcp), &mut stopping).await {
                Ok(spoken) => self.speak(spoken, opened, ends_at, &mut stopping).await,
                Err(end) => end,
            },
            Some(acceptor) => {
                let tls_then_sniff = async { by_alpn(acceptor.accept(tcp).await?).await };
                match self.handshake(tls_then_sniff, &mut stopping).await {
                    Ok(spoken) => self.speak(spoken, opened, ends_at, &mut stopping).await,
                    Err(end) => end,
                }
            }
        };
    }

    /// Serves the connection in the protocol it speaks.
    async fn speak<IO>(
        &self,
        spoken: Spoken<IO>,
        opened: Instant,
        ends_at: Instant,
        stopping: &mut watch::Receiver<bool>,
    ) -> ConnectionEnd
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match spoken {
            Spoken::Http2(io) => http2_until(self, io, ends_at, stopping).await,
            Spoken::Http1(io) => h1::serve(self, io, opened, ends_at, stopping).await,
        }
    }

    /// `handshake` within `server.handshake_timeout`; else why not: it
    /// failed or ran out of time (`Handshake`), or the server stopped first.
    async fn handshake<IO>(
        &self,
        handshake: impl Future<Output = io::Result<IO>>,
        stopping: &mut watch::Receiver<bool>,
    ) -> Result<IO, ConnectionEnd> {
        tokio::select! {
            shaken = tokio::time::timeout(self.handshake_timeout, handshake) => match shaken {
                Ok(Ok(io)) => Ok(io),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "connection handshake failed");
                    Err(ConnectionEnd::Handshake)
                }
                Err(_) => {
                    tracing::debug!("no TLS handshake and first bytes within server.handshake_timeout");
                    Err(ConnectionEnd::Handshake)
                }
            },
            _ = stopping.wait_for(|stop| *stop) => Err(ConnectionEnd::Shutdown),
        }
    }
}

/// Serves HTTP/2 on `io` until the client leaves, `stopping` turns true or
/// `ends_at` passes; from the last two, GOAWAY and a drain. Returns which.
async fn http2_until<IO>(
    connections: &Connections,
    io: IO,
    ends_at: Instant,
    stopping: &mut watch::Receiver<bool>,
) -> ConnectionEnd
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = connections
        .http2
        .serve_connection(TokioIo::new(io), connections.calls.clone());
    let mut conn = std::pin::pin!(conn);
    let aged = tokio::select! {
        served = conn.as_mut() => {
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
            return ConnectionEnd::Client;
        }
        () = tokio::time::sleep_until(ends_at) => true,
        _ = stopping.wait_for(|stop| *stop) => false,
    };
    // GOAWAY: the client opens a new connection for its next calls, and
    // the calls in flight here finish.
    conn.as_mut().graceful_shutdown();
    if aged {
        if tokio::time::timeout(connections.age_grace, conn)
            .await
            .is_err()
        {
            tracing::debug!("connection age grace over; closing the connection");
        }
        ConnectionEnd::Age
    } else {
        // The server's own shutdown grace bounds this drain.
        let _ = conn.await;
        ConnectionEnd::Shutdown
    }
}
