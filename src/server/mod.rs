//! Wiring: our accept loop serving tonic's router (the KTP service, health and
//! reflection), and the shutdown sequence Kubernetes expects.
//!
//! The shutdown signal is a parameter, so tests drive the real server
//! in-process and `main` passes SIGTERM/SIGINT.
//!
//! - `serve`: the accept loop, with the cap on open connections.
//! - `lifetime`: one connection from handshake to close (connection age).
//! - `calls`: the services as hyper serves them (router, caller deadline).
//! - `connection`: how accepted connections are wrapped, and told HTTP/2
//!   from HTTP/1.1.
//! - `http1`: an HTTP/1.1 connection's limits (gRPC-Web callers).
//! - `cors`: CORS for browser callers, by allowed origin.
//! - `health`: `grpc.health.v1`, following the shutdown sequence.
//! - `metrics_endpoint`: `GET /metrics` on its own port.

mod calls;
mod connection;
mod cors;
mod health;
mod http1;
pub mod ktp;
mod lifetime;
mod metrics_endpoint;
mod serve;

use lifetime::Connections;
use metrics_endpoint::MetricsEndpoint;

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tower::Layer;

use crate::{
    config::Settings,
    grpc,
    metrics::Metrics,
    proto,
    resilience::{capacity, overload::InFlightLimit},
    sandbox::Sandbox,
    security::tls::TlsCheckError,
    telemetry::traces,
    upstream::{Upstream, client::BuildError},
};

/// Cap on the HTTP/2 header block a caller may send.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// The server could not start or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The upstream HTTP client could not be built.
    #[error(transparent)]
    Upstream(#[from] BuildError),
    /// `--sandbox` asked for the embedded sandbox and it could not bind.
    #[error("cannot start the embedded sandbox: {0}")]
    Sandbox(#[source] std::io::Error),
    /// A TLS file could not be read or used when the server started (it
    /// changed since the check at load).
    #[error("invalid {key} (set with {env}): {source}")]
    Tls {
        /// The setting that names the file.
        key: &'static str,
        /// Its environment variable.
        env: String,
        /// What is wrong with the file.
        #[source]
        source: TlsCheckError,
    },
    /// The metrics port is taken or not ours to bind.
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsBind {
        /// `metrics.addr`.
        addr: std::net::SocketAddr,
        /// Why the bind failed.
        #[source]
        source: std::io::Error,
    },
    /// Two metrics with one name: a bug, caught before serving.
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The embedded descriptor set is unusable: a build bug.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Span export could not be set up.
    #[error(transparent)]
    Traces(#[from] traces::TraceError),
    /// The serving task panicked.
    #[error("gRPC server task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl ServeError {
    fn tls(source: TlsCheckError) -> Self {
        let key = source.file.key();
        Self::Tls {
            key,
            env: crate::config::env_name(key),
            source,
        }
    }
}

/// Stops a background task when the server stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reflection knows our contract, health, and the `google.rpc` detail types,
/// so `grpcurl describe` works on every service and every error detail.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        // Register both reflection versions' descriptors in each, so that
        // `list` through either names both (old grpcurl speaks only v1alpha).
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Serves on `listener` until `shutdown` completes, then drains: health turns
/// NOT_SERVING, calls are still served for `server.drain_delay`, then the
/// listener closes and in-flight calls finish; whatever is left when
/// `server.shutdown_grace` (counted from the signal) runs out is abandoned.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let metrics_listener = if settings.metrics.enabled {
        let addr = *settings.metrics.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::MetricsBind { addr, source })?;
        Some(listener)
    } else {
        None
    };
    run_with(settings, listener, metrics_listener, shutdown).await
}

/// [`run`] on listeners the caller bound (tests bind ephemeral ports).
pub async fn run_with(
    mut settings: Settings,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let _sandbox = if settings.sandbox.enabled {
        let sandbox = Sandbox::start(
            *settings.sandbox.processing_time,
            *settings.submit.max_image_bytes,
        )
        .await
        .map_err(ServeError::Sandbox)?;
        tracing::warn!(
            upstream = %sandbox.base_url(),
            "SANDBOX MODE: answers are canned and fictional, no real upstream is called"
        );
        settings.upstream.base_url = sandbox.base_url().clone();
        Some(sandbox)
    } else {
        None
    };
    let metrics = Metrics::new()?;
    let (tracer, export) = traces::start(&settings.trace, &metrics)?;
    let upstream = if settings.sandbox.enabled {
        Upstream::for_sandbox(&settings.upstream, &settings.wait, metrics.clone())?
    } else {
        Upstream::new(&settings.upstream, &settings.wait, metrics.clone())?
    };
    let caps = capacity::caps(
        settings.server.max_in_flight.map(|c| *c),
        settings.wait.max_waiting.map(|c| *c),
        capacity::submit_reserve(
            *settings.submit.max_in_flight,
            *settings.submit.max_image_bytes,
        ),
    );
    let in_flight = InFlightLimit::new(caps.in_flight);
    let waiting = InFlightLimit::new(caps.waiting);
    let metrics_addr = match metrics_listener {
        Some(listener) => {
            let addr = listener
                .local_addr()
                .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
            let scrape = MetricsEndpoint {
                metrics: metrics.clone(),
                in_flight: in_flight.clone(),
                waiting: waiting.clone(),
                upstream: upstream.clone(),
            };
            Some((addr, AbortOnDrop(tokio::spawn(scrape.serve(listener)))))
        }
        None => None,
    };

    let (health, health_service) = health::service();
    let (reflection_v1, reflection_v1alpha) = if settings.server.reflection {
        (
            Some(reflection().build_v1()?),
            Some(reflection().build_v1alpha()?),
        )
    } else {
        (None, None)
    };
    // Its waits are handed back when the drain delay ends.
    let waits = upstream.clone();
    let ktp = ktp::ktp_service(
        upstream,
        metrics.clone(),
        (in_flight, waiting),
        tracer,
        &settings,
    );

    let local_addr = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Reflection shows the contract only, but where callers need a token
    // for the data they need one for the schema too; health stays open
    // (the kubelet sends no token).
    let schema_auth = crate::call::auth::layer(settings.auth.tokens().cloned());
    let mut routes = Routes::new(health_service);
    if let Some(v1) = reflection_v1 {
        routes = routes.add_service(schema_auth.layer(v1));
    }
    if let Some(v1alpha) = reflection_v1alpha {
        routes = routes.add_service(schema_auth.layer(v1alpha));
    }
    // gRPC-Web is translated in front of the call layer, Connect marked
    // there, CORS in front of both: every protocol takes the one call path.
    let ktp = cors::Cors::new(
        settings.server.cors_allowed_origins.as_slice(),
        grpc::web::GrpcWeb::new(crate::connect::Connect::new(ktp)),
    );
    let connections = Connections::new(&settings.server, routes.add_service(ktp), metrics.clone())?;
    let server = serve::serve(listener, connections, async {
        let _ = stop_rx.await;
    });

    let mut server = tokio::spawn(server);
    tracing::info!(
        addr = %local_addr,
        upstream = %settings.upstream.base_url,
        version = env!("CARGO_PKG_VERSION"),
        tls = match settings.server.tls.settings() {
            None => "off",
            Some(t) if t.client_ca_file.is_some() => "mutual",
            Some(_) => "on",
        },
        auth = if settings.auth.tokens().is_some() { "bearer" } else { "off" },
        reflection = settings.server.reflection,
        metrics_addr = metrics_addr.as_ref().map_or("off", |(addr, _)| addr.as_str()),
        "ktp-gateway serving"
    );

    tokio::select! {
        () = shutdown => {}
        // The server only ends on its own if it failed.
        ended = &mut server => return ended?,
    }

    let shutdown_started = tokio::time::Instant::now();
    let grace = *settings.server.shutdown_grace;
    health.not_serving();
    let delay = settings.server.drain_delay.min(grace);
    tracing::info!(
        drain_delay_ms = delay.as_millis() as u64,
        grace_ms = grace.as_millis() as u64,
        "health is NOT_SERVING; still serving for the drain delay"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        ended = &mut server => return ended?,
    }

    let _ = stop_tx.send(());
    // Waiting calls would hold the pod for their jobs: they answer now
    // (SHUTTING_DOWN, naming their job), and so does any that starts
    // waiting from here on; calls that are not waiting drain.
    waits.stop_waiting();
    // A health Watch stream never ends by itself and would hold the drain
    // until the grace period: watchers have seen NOT_SERVING by now, so end
    // their streams (Check keeps answering NOT_SERVING until exit).
    health.close_watches();
    tracing::info!("listener closed; draining in-flight calls");
    let remaining = grace.saturating_sub(shutdown_started.elapsed());
    let drained = tokio::time::timeout(remaining, &mut server).await;
    if drained.is_err() {
        server.abort();
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "grace period over; closing remaining connections"
        );
    }
    // The calls' spans are queued by now; they leave within the grace.
    if let Some(export) = export {
        export
            .flush(grace.saturating_sub(shutdown_started.elapsed()))
            .await;
    }
    if let Ok(ended) = drained {
        ended??;
        tracing::info!("shutdown complete");
    }
    Ok(())
}

/// One worker: a single-threaded runtime. It wakes tasks in order instead of
/// running the last one woken next, so a connection writes the answers of
/// all the calls that finished together in one go rather than one by one:
/// a fifth less CPU per call at 2,000 calls in flight (`bench/README.md`,
/// change 11). A pod with a 1-CPU limit gets this by default.
pub fn runtime_builder(worker_threads: usize) -> tokio::runtime::Builder {
    let workers = match worker_threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    }
}
