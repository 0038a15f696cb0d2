//! The gateway binary as a subprocess: started with a clean environment,
//! its port learnt from the "serving" log line, its calls made through a
//! tonic client, its "call finished" lines found by request id.

use std::{
    net::SocketAddr,
    process::{Command, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use ktp_gateway::proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::process::{EXIT_TIMEOUT, Exited, LOG_TIMEOUT, Process, run_to_exit};

/// The binary under test, built by Cargo for this test target.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_ktp-gateway");
/// How long the binary may take to print its "serving" line (generous: the
/// machine may be busy compiling other test targets).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Message of the log line that announces the listening address.
pub(crate) const SERVING_MESSAGE: &str = "ktp-gateway serving";
/// Message of the one log line each call writes.
pub(crate) const CALL_FINISHED: &str = "call finished";

/// Env var names used by the tests.
pub(crate) mod env {
    pub(crate) const GRPC_ADDR: &str = "KTP_GATEWAY__SERVER__GRPC_ADDR";
    pub(crate) const METRICS_ADDR: &str = "KTP_GATEWAY__METRICS__ADDR";
    pub(crate) const SHUTDOWN_GRACE: &str = "KTP_GATEWAY__SERVER__SHUTDOWN_GRACE";
    pub(crate) const DRAIN_DELAY: &str = "KTP_GATEWAY__SERVER__DRAIN_DELAY";
    pub(crate) const WORKER_THREADS: &str = "KTP_GATEWAY__SERVER__WORKER_THREADS";
    pub(crate) const LOG_FORMAT: &str = "KTP_GATEWAY__LOG__FORMAT";
    pub(crate) const LOG_FILTER: &str = "KTP_GATEWAY__LOG__FILTER";
    pub(crate) const BASE_URL: &str = "KTP_GATEWAY__UPSTREAM__BASE_URL";
    pub(crate) const TIMEOUT: &str = "KTP_GATEWAY__UPSTREAM__TIMEOUT";
    pub(crate) const APP_ID: &str = "KTP_GATEWAY__UPSTREAM__APP_ID";
    pub(crate) const APP_ID_FILE: &str = "KTP_GATEWAY__UPSTREAM__APP_ID_FILE";
    pub(crate) const API_KEY: &str = "KTP_GATEWAY__UPSTREAM__API_KEY";
    pub(crate) const API_KEY_FILE: &str = "KTP_GATEWAY__UPSTREAM__API_KEY_FILE";
    pub(crate) const ALLOW_UNAUTHENTICATED: &str = "KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED";
}

/// A command for the binary with a clean environment: only `PATH`, an
/// ephemeral loopback port, JSON logs at `info`, callers unauthenticated by
/// the explicit opt-out (a test of the start's auth rule sets it `false`;
/// a tokens file applies anyway), then `vars` (which may override those).
/// Inherited `KTP_GATEWAY__*` and `RUST_LOG` are gone.
pub(crate) fn gateway_command(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env(env::GRPC_ADDR, "127.0.0.1:0")
        .env(env::METRICS_ADDR, "127.0.0.1:0")
        .env(env::LOG_FORMAT, "json")
        .env(env::LOG_FILTER, "info")
        .env(env::ALLOW_UNAUTHENTICATED, "true")
        .envs(vars.iter().copied())
        .args(args);
    cmd
}

/// Runs the gateway binary with `args` and `vars` (see [`gateway_command`])
/// to completion.
pub(crate) fn run_gateway_to_exit(args: &[&str], vars: &[(&str, &str)]) -> Exited {
    run_to_exit(gateway_command(args, vars))
}

/// A running gateway that has announced its address.
pub(crate) struct Gateway {
    pub process: Process,
    pub addr: SocketAddr,
}

impl Gateway {
    /// Starts the binary and waits for its "serving" line.
    pub(crate) fn start(args: &[&str], vars: &[(&str, &str)]) -> Self {
        let mut process = Process::spawn(gateway_command(args, vars));
        let serving = process.wait_for_log("announcing the address", START_TIMEOUT, |v| {
            v["message"] == SERVING_MESSAGE
        });
        let addr: SocketAddr = serving["addr"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "serving line has no IP:port addr: {serving}\n{}",
                    process.output()
                )
            });
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "unexpected serving address {addr}\n{}",
            process.output()
        );
        // The binary installs its SIGTERM handler before it listens
        // (`cli::shutdown::sigterm_right_after_serving_is_handled` guards that);
        // checking it here keeps every other test from depending on it.
        let deadline = Instant::now() + LOG_TIMEOUT;
        while !process.catches_sigterm() {
            assert!(
                Instant::now() < deadline,
                "no SIGTERM handler {LOG_TIMEOUT:?} after the serving line\n{}",
                process.output()
            );
            #[expect(
                clippy::disallowed_methods,
                reason = "the harness is synchronous; async tests call it in block_in_place"
            )]
            thread::sleep(Duration::from_millis(5));
        }
        Self { process, addr }
    }

    /// Starts the binary with `--sandbox` and `vars`.
    pub(crate) fn sandbox(vars: &[(&str, &str)]) -> Self {
        Self::start(&["--sandbox"], vars)
    }

    /// `http://127.0.0.1:PORT`, for tonic.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A fresh, connected channel (its own TCP connection).
    pub(crate) async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url())
            .expect("valid endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url()))
    }

    /// A KTP client on a fresh channel.
    pub(crate) async fn ktp(&self) -> KtpServiceClient<Channel> {
        KtpServiceClient::new(self.channel().await)
    }

    /// A health client on a fresh channel.
    pub(crate) async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    /// SIGTERM, then waits for the exit and the last output lines.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.process.sigterm();
        self.process.wait_exit(EXIT_TIMEOUT)
    }

    /// The "call finished" line with this request id, waiting for it.
    pub(crate) fn call_log(&mut self, request_id: &str) -> Value {
        self.process
            .wait_for_log(&format!("for request {request_id}"), LOG_TIMEOUT, |v| {
                v["message"] == CALL_FINISHED && v["request_id"] == request_id
            })
    }
}

/// A `GetKtpResult` request, optionally with an `x-request-id`.
pub(crate) fn ktp_request(
    reference_id: &str,
    request_id: Option<&str>,
) -> tonic::Request<GetKtpResultRequest> {
    let mut request = tonic::Request::new(GetKtpResultRequest {
        read_mask: None,
        reference_id: reference_id.to_owned(),
        wait: false,
    });
    if let Some(id) = request_id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("ASCII request id"));
    }
    request
}

/// The health status of `service` ("" for the whole server).
pub(crate) async fn health_status(
    client: &mut HealthClient<Channel>,
    service: &str,
) -> Result<ServingStatus, tonic::Status> {
    let response = client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// `needle` must occur in no output line; `what` names it in the message.
pub(crate) fn assert_absent(lines: &[String], needle: &str, what: &str) {
    if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
        panic!("{what} {needle:?} leaked into the output: {line}");
    }
}
