//! `ktp-gateway`: flags → config → telemetry → serve until SIGTERM/SIGINT.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use ktp_gateway::{
    config::{Settings, Sources},
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
    let code = runtime.block_on(async {
        // Handlers first: a SIGTERM that arrives while starting up must
        // still mean "drain and exit 0", not the default "die".
        let shutdown = match shutdown_signal() {
            Ok(signal) => signal,
            Err(e) => {
                eprintln!("ktp-gateway: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = *settings.server.grpc_addr;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen");
                eprintln!("ktp-gateway: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        match server::run(settings, listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                ExitCode::FAILURE
            }
        }
    });
    // Stop the workers, then write the log lines still queued.
    drop(runtime);
    drop(log_guard);
    code
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
