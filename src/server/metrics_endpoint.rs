//! `GET /metrics` on its own port, apart from the gRPC one: HTTP/1.1 with
//! timeouts, so a client that connects and says nothing, or never reads its
//! answer, cannot hold a connection (and its memory) for ever.

use std::{convert::Infallible, sync::Arc, time::Duration};

use hyper::{
    Method, Request, Response, StatusCode, body::Incoming, header, server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::{
    metrics::{EncodeError, Metrics},
    resilience::overload::InFlightLimit,
    telemetry,
    upstream::Upstream,
};

/// `GET /metrics` on its own port. Gauges are refreshed at scrape time.
pub(super) struct MetricsEndpoint {
    pub(super) metrics: Metrics,
    pub(super) in_flight: InFlightLimit,
    pub(super) waiting: InFlightLimit,
    pub(super) upstream: Upstream,
}

impl MetricsEndpoint {
    pub(super) async fn serve(self, listener: TcpListener) {
        let scrape = move || {
            self.metrics.refresh(
                (self.in_flight.in_flight(), self.waiting.in_flight()),
                self.upstream.circuit_phase().into(),
                telemetry::lines_dropped(),
            );
            self.metrics.encode()
        };
        serve(listener, Timeouts::default(), Arc::new(scrape)).await;
    }
}

/// How long a metrics connection may take at each step. Fixed: a scrape is
/// one small request, so these suit every Prometheus (documented in the
/// README); tests shorten them.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// From connecting, or from the last answer, to a request's complete
    /// headers: bounds both a silent client and an idle keep-alive
    /// connection (hyper starts this clock whenever it waits for a request).
    headers: Duration,
    /// Then the connection finishes its request and closes.
    max_age: Duration,
    /// How long that last request may take after `max_age`.
    max_age_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            headers: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
            max_age_grace: Duration::from_secs(10),
        }
    }
}

/// Renders the page, or says why it cannot.
type Scrape = Arc<dyn Fn() -> Result<String, EncodeError> + Send + Sync>;

async fn serve(listener: TcpListener, timeouts: Timeouts, scrape: Scrape) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.headers);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: back off rather than spin.
                tracing::warn!(error = %e, "metrics endpoint cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let scrape = scrape.clone();
        let service = service_fn(move |request| {
            let scrape = scrape.clone();
            async move { Ok::<_, Infallible>(answer(&request, &*scrape)) }
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = tokio::time::sleep(timeouts.max_age) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(timeouts.max_age_grace, connection).await;
        });
    }
}

fn answer(
    request: &Request<Incoming>,
    scrape: &(dyn Fn() -> Result<String, EncodeError> + Send + Sync),
) -> Response<String> {
    let page = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => scrape(),
        _ => return text(StatusCode::NOT_FOUND, "not found: try GET /metrics\n"),
    };
    match page {
        Ok(page) => {
            let mut response = text(StatusCode::OK, page);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        Err(e) => {
            // A page with some series missing would look like a quiet
            // service to Prometheus; a failed scrape fires `up == 0`.
            tracing::error!(error = %e, "cannot serve /metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics; see the gateway's log\n",
            )
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<String> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    use super::*;

    async fn start(metrics: Metrics, timeouts: Timeouts) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let scrape = move || metrics.encode();
        tokio::spawn(serve(listener, timeouts, Arc::new(scrape)));
        addr
    }

    /// Everything the server sends until it closes (or 30 s pass).
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out));
        assert!(read.await.is_ok(), "still open after 30 s");
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        read_to_close(&mut stream).await
    }

    #[tokio::test]
    async fn an_unencodable_page_is_a_500_not_an_empty_200() {
        let addr = start(crate::metrics::tests::unencodable(), Timeouts::default()).await;
        let answer = get(addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
        assert!(answer.contains("cannot encode the metrics"), "{answer}");
    }

    #[tokio::test]
    async fn a_page_is_a_200_and_other_paths_404() {
        let metrics = Metrics::new().expect("metrics");
        let addr = start(metrics, Timeouts::default()).await;
        let answer = get(addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.contains("ktp_gateway_build_info"), "{answer}");
        let answer = get(addr, "/").await;
        assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    }

    fn short() -> Timeouts {
        Timeouts {
            headers: Duration::from_millis(300),
            max_age: Duration::from_secs(60),
            max_age_grace: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_silent_client_is_closed_after_the_header_timeout() {
        let addr = start(Metrics::new().expect("metrics"), short()).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        let said = read_to_close(&mut silent).await;
        assert!(started.elapsed() >= Duration::from_millis(300), "{said}");
        // Half a request is no better than none.
        let mut slow = TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .expect("send");
        read_to_close(&mut slow).await;
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let addr = start(Metrics::new().expect("metrics"), short()).await;
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n";
        stream.write_all(request.as_bytes()).await.expect("send");
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    }

    #[tokio::test]
    async fn a_busy_connection_ends_at_its_max_age() {
        let timeouts = Timeouts {
            headers: Duration::from_secs(60),
            max_age: Duration::from_millis(300),
            max_age_grace: Duration::from_millis(300),
        };
        let addr = start(Metrics::new().expect("metrics"), timeouts).await;
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // Headers never finish, so only the age can end it.
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .await
            .expect("send");
        read_to_close(&mut stream).await;
    }
}
