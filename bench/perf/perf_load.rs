//! Helper of `bench/perf/run` (run that script, not this directly). Its jobs:
//!
//! - `canned`: the reference server. The same contract on tonic's server, with
//!   health, answering every `GetKtpResult` with one fixed response (built
//!   once from the same upstream JSON the gateway receives, so both send the
//!   same bytes) and no upstream call; `--delay-ms` answers after a timer,
//!   standing in for the upstream's latency.
//! - `https-upstream`: the fake vendor over HTTPS (`https_upstream.rs`).
//! - `otlp-sink`: an OpenTelemetry collector that counts the spans it is
//!   sent and keeps none (`--traces`: the gateway's export, measured).
//! - `bare`: a bare proxy (tonic + reqwest + the gateway's JSON and
//!   protobuf conversion, none of its features), for reference.
//! - `start`: spawns a server command, and measures the time from spawn to
//!   health `SERVING` (polled every 0.5 ms); prints `<pid> <ms>` and leaves
//!   the server running (the script stops it).
//! - `ports`: free loopback TCP ports outside the kernel's ephemeral range,
//!   so they never collide with tests that bind port 0 meanwhile.
//!
//! The load itself comes from h2load, driven by the script.
#![expect(
    clippy::disallowed_macros,
    reason = "a bench tool: its stdout is what bench/perf/run reads (a pid, free ports)"
)]

use std::{
    fs::File,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::PathBuf,
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

mod https_upstream;

use clap::{Parser, Subcommand};
use ktp_gateway::{
    convert,
    proto::{
        ExtractKtpRequest, ExtractKtpResponse, GetKtpResultRequest, GetKtpResultResponse,
        SubmitKtpRequest, SubmitKtpResponse,
        ktp_service_server::{KtpService, KtpServiceServer},
    },
    reference_id::ReferenceId,
    server,
    upstream::model,
};
use tonic::{Request, Response, Status, transport::Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Serve the canned-answer reference server.
    Canned {
        #[arg(long)]
        addr: SocketAddr,
        /// The upstream JSON success body the answer is built from.
        #[arg(long)]
        body: PathBuf,
        /// The reference id the calls carry: the gateway echoes it in the
        /// answer, so the canned answer holds it too (same size, same bytes).
        #[arg(long)]
        reference_id: String,
        /// Answer after this many milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
    /// Serve the fake vendor over HTTPS (HTTP/2 or HTTP/1.1 through ALPN).
    HttpsUpstream {
        #[arg(long)]
        addr: SocketAddr,
        /// The JSON every request is answered with.
        #[arg(long)]
        body: PathBuf,
        /// Answer after this many milliseconds.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Where to write the CA certificate (PEM) the gateway must trust.
        #[arg(long)]
        ca_out: PathBuf,
        /// Offer only HTTP/1.1 through ALPN.
        #[arg(long)]
        http1_only: bool,
    },
    /// Serve a bare proxy: tonic + reqwest + JSON → protobuf, no features.
    Bare {
        #[arg(long)]
        addr: SocketAddr,
        /// The upstream base URL.
        #[arg(long)]
        upstream: String,
    },
    /// Spawn a server and time it to health SERVING; prints `<pid> <ms>`.
    Start {
        /// The gRPC address the server listens on.
        #[arg(long)]
        addr: SocketAddr,
        /// Where the server's stdout and stderr go.
        #[arg(long)]
        log: PathBuf,
        /// Give up (and kill the server) after this many milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Serve an OTLP/gRPC trace sink that counts spans and keeps none.
    OtlpSink {
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Print `n` free loopback ports outside the ephemeral range.
    Ports { n: usize },
}

/// Counts spans until killed; prints the count every second it changes.
async fn otlp_sink(addr: SocketAddr) -> Result<(), String> {
    let sink = ktp_testkit::otlp::FakeCollector::start_at(addr).await;
    sink.set_mode(ktp_testkit::otlp::Mode::Count);
    let mut last = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = sink.counted();
        if now != last {
            println!("spans {now}");
            last = now;
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Cmd::Canned {
            addr,
            body,
            reference_id,
            delay_ms,
        } => runtime().block_on(canned(
            addr,
            body,
            reference_id,
            Duration::from_millis(delay_ms),
        )),
        Cmd::HttpsUpstream {
            addr,
            body,
            delay_ms,
            ca_out,
            http1_only,
        } => runtime().block_on(https_upstream::serve(
            addr,
            body,
            Duration::from_millis(delay_ms),
            ca_out,
            http1_only,
        )),
        Cmd::Bare { addr, upstream } => runtime().block_on(bare(addr, upstream)),
        Cmd::Start {
            addr,
            log,
            timeout_ms,
            command,
        } => start(addr, log, Duration::from_millis(timeout_ms), &command),
        Cmd::OtlpSink { addr } => runtime().block_on(otlp_sink(addr)),
        Cmd::Ports { n } => ports(n),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf_load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // The gateway's own rule (`server.worker_threads` = 0), so that the ratio
    // measures the gateway's work, not a difference in scheduling.
    server::runtime_builder(0)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The least a server of this contract could do per call.
struct Canned {
    answer: GetKtpResultResponse,
    delay: Duration,
}

#[tonic::async_trait]
impl KtpService for Canned {
    async fn get_ktp_result(
        &self,
        request: Request<GetKtpResultRequest>,
    ) -> Result<Response<GetKtpResultResponse>, Status> {
        drop(request);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        Ok(Response::new(self.answer.clone()))
    }

    async fn submit_ktp(
        &self,
        _: Request<SubmitKtpRequest>,
    ) -> Result<Response<SubmitKtpResponse>, Status> {
        Err(Status::unimplemented(
            "the floor measures GetKtpResult only",
        ))
    }

    async fn extract_ktp(
        &self,
        _: Request<ExtractKtpRequest>,
    ) -> Result<Response<ExtractKtpResponse>, Status> {
        Err(Status::unimplemented(
            "the floor measures GetKtpResult only",
        ))
    }
}

async fn canned(
    addr: SocketAddr,
    body: PathBuf,
    reference_id: String,
    delay: Duration,
) -> Result<(), String> {
    let json = std::fs::read(&body).map_err(|e| format!("{}: {e}", body.display()))?;
    let result = model::interpret(200, None, &json).map_err(|e| e.to_string())?;
    let id = ReferenceId::parse(reference_id).map_err(|e| e.to_string())?;
    let answer = convert::to_response(result, &id);
    serve(addr, Canned { answer, delay }).await
}

/// The least a proxy of this contract could do per call: no logs, metrics,
/// limits, retries or request ids.
struct Bare {
    http: reqwest::Client,
    url: String,
}

#[tonic::async_trait]
impl KtpService for Bare {
    async fn get_ktp_result(
        &self,
        request: Request<GetKtpResultRequest>,
    ) -> Result<Response<GetKtpResultResponse>, Status> {
        let id = ReferenceId::parse(request.into_inner().reference_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let response = self
            .http
            .get(format!("{}?reference_id={}", self.url, id.as_str()))
            .header("App-ID", "perf-app-id")
            .header("API-Key", "perf-api-key")
            .send()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let result =
            model::interpret(status, None, &body).map_err(|e| Status::unknown(e.to_string()))?;
        Ok(Response::new(convert::to_response(result, &id)))
    }

    async fn submit_ktp(
        &self,
        _: Request<SubmitKtpRequest>,
    ) -> Result<Response<SubmitKtpResponse>, Status> {
        Err(Status::unimplemented(
            "the floor measures GetKtpResult only",
        ))
    }

    async fn extract_ktp(
        &self,
        _: Request<ExtractKtpRequest>,
    ) -> Result<Response<ExtractKtpResponse>, Status> {
        Err(Status::unimplemented(
            "the floor measures GetKtpResult only",
        ))
    }
}

async fn bare(addr: SocketAddr, upstream: String) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!(
        "{}/ktp/id/extract-async/result",
        upstream.trim_end_matches('/')
    );
    serve(addr, Bare { http, url }).await
}

fn start(
    addr: SocketAddr,
    log: PathBuf,
    timeout: Duration,
    command: &[String],
) -> Result<(), String> {
    let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", command[0]))?;
    let serving = rt.block_on(async {
        let endpoint =
            Endpoint::from_shared(format!("http://{addr}")).map_err(|e| e.to_string())?;
        loop {
            if started.elapsed() > timeout {
                return Err(format!("not SERVING within {timeout:?}"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status} before SERVING"));
            }
            if let Ok(channel) = endpoint.connect().await {
                let mut health = HealthClient::new(channel);
                let check = health.check(HealthCheckRequest {
                    service: String::new(),
                });
                if let Ok(r) = check.await
                    && r.into_inner().status == ServingStatus::Serving as i32
                {
                    return Ok(started.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    });
    match serving {
        Ok(elapsed) => {
            println!("{} {:.1}", child.id(), elapsed.as_secs_f64() * 1000.0);
            Ok(())
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{}: {e} (log: {})",
                command.join(" "),
                log.display()
            ))
        }
    }
}

fn ports(n: usize) -> Result<(), String> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let mut found = Vec::new();
    for _ in 0..10_000 {
        if found.len() == n {
            break;
        }
        let port = fastrand::u16(10_000..=60_000);
        let ephemeral = (range.0..=range.1).contains(&port);
        if ephemeral || found.contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            found.push(port);
        }
    }
    if found.len() < n {
        return Err("no free ports outside the ephemeral range".into());
    }
    let found: Vec<String> = found.iter().map(u16::to_string).collect();
    println!("{}", found.join(" "));
    Ok(())
}

/// Serves `ktp` and health (SERVING at once) on `addr`, as a plain tonic
/// server: no limits, interceptors or logs.
async fn serve(addr: SocketAddr, ktp: impl KtpService) -> Result<(), String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(KtpServiceServer::new(ktp))
        .serve(addr)
        .await
        .map_err(|e| e.to_string())
}
