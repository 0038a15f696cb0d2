//! `ktp-gateway`: flags → config → telemetry → serve until SIGTERM/SIGINT.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, OnceLock},
    time::Instant,
};

use clap::Parser;
use ktp_gateway::{
    config::{Settings, Sources, env_name},
    server, telemetry,
};

/// gRPC gateway for the Verihubs KTP OCR result API.
///
/// Settings come from built-in defaults, then the optional --config file,
/// then KTP_GATEWAY__SECTION__KEY environment variables (see the README).
#[derive(Debug, Parser)]
#[command(name = "ktp-gateway", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Answer from the embedded offline sandbox; needs no credentials.
    #[arg(long)]
    sandbox: bool,
}

/// jemalloc rather than glibc's malloc: about a sixth less CPU per call under
/// load, and no more memory with the settings in `.cargo/config.toml`
/// (`bench/README.md`, change 8).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(Sources {
        file: cli.config,
        env: None,
        sandbox: cli.sandbox,
    }) {
        Ok(s) => s,
        Err(e) => {
            // One line, whatever the underlying error looked like.
            eprintln!("ktp-gateway: {}", e.to_string().replace('\n', " "));
            return ExitCode::from(2);
        }
    };
    // Kept to the end: dropping it writes the last queued log lines.
    let log_guard = match telemetry::init(&settings.log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("ktp-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Each call in flight can hold a client stream and an upstream connection:
    // the common soft limit of 1,024 open files would cap the gateway far below
    // `server.max_in_flight`. Raise it to the hard limit, as Go runtimes do.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(open_files = limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let grace = *settings.server.shutdown_grace;
    let runtime = match server::runtime_builder(*settings.server.worker_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ktp-gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // When the shutdown signal came: the rest of `server.shutdown_grace` is
    // what blocking work (a DNS lookup that never answers) may still take.
    let signalled = Arc::new(OnceLock::new());
    let code = runtime.block_on(async {
        // Handlers first: a SIGTERM that arrives while starting up must
        // still mean "drain and exit 0", not the default "die".
        let shutdown = match shutdown_signal() {
            Ok(signal) => {
                let signalled = Arc::clone(&signalled);
                async move {
                    signal.await;
                    let _ = signalled.set(Instant::now());
                }
            }
            Err(e) => {
                eprintln!("ktp-gateway: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Metrics first: an address that cannot be bound is a configuration
        // error, and must stop the start before the gRPC port takes calls.
        let metrics_listener = if settings.metrics.enabled {
            match bind("metrics.addr", *settings.metrics.addr).await {
                Ok(l) => Some(l),
                Err(code) => return code,
            }
        } else {
            None
        };
        let listener = match bind("server.grpc_addr", *settings.server.grpc_addr).await {
            Ok(l) => l,
            Err(code) => return code,
        };
        match server::run_with(settings, listener, metrics_listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    });
    // Stop the workers, then write the log lines still queued. Blocking
    // tasks are not waited for past the grace: dropping the runtime would
    // wait for them forever.
    let left = signalled
        .get()
        .map_or(grace, |at: &Instant| grace.saturating_sub(at.elapsed()));
    runtime.shutdown_timeout(left);
    drop(log_guard);
    code
}

/// Binds the listener of `key`; a failure is a configuration error: one line
/// naming the key and its env var, exit code 2.
async fn bind(key: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener, ExitCode> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        eprintln!(
            "ktp-gateway: cannot listen on {key} {addr} (set with {}): {e}",
            env_name(key)
        );
        ExitCode::from(2)
    })
}

/// Installs the SIGTERM (what Kubernetes sends) and SIGINT (Ctrl-C) handlers
/// now, and returns a future that resolves on the first of them.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "received {name}, starting shutdown");
    })
}
