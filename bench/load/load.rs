//! Load generator behind `bench/load/run` (run that script, not this
//! directly): the release `ktp-gateway` binary as a subprocess, a fake
//! upstream in this process that answers every result call after a fixed
//! latency (100 ms by default), and `--concurrency` callers (2,000 by
//! default) spread over `--connections` HTTP/2 connections, each calling
//! `GetKtpResult` back to back for `--duration` seconds.
//!
//! Every call uses a new reference id (`LOAD-<caller>-<n>`), so request
//! coalescing cannot merge them: every call is a real upstream request.
//!
//! With `--submit-bytes N`, every call is a `SubmitKtp` of an N-byte PNG
//! instead (the fake upstream reads the whole body, then answers after the
//! latency), and the report adds the gateway's RSS growth per submit in
//! flight, as a multiple of the image size: what `submit.max_in_flight`
//! bounds.
//!
//! Reports throughput, latency percentiles, results by gRPC code (anything
//! but OK is unexpected: the exit status is 1 then), the gateway's peak RSS
//! (polled from `/proc/PID/status` every 50 ms, and its `VmHWM`), and ends
//! with one `SUMMARY` line. Loopback only; bounded in time: calls carry a
//! deadline, and the run stops by itself.
//!
//! With `--waits N` it measures waiting calls instead (`waits.rs`): N
//! concurrent `GetKtpResult(wait = true)` (or `ExtractKtp` with `--extract`)
//! for jobs that finish `--job-time` after their submit, against a fake
//! upstream that answers "not found" until then and counts its GETs per job
//! and its connections.
#![expect(
    clippy::disallowed_macros,
    reason = "a bench tool: its report is its stdout (the gateway's logs go to a pipe)"
)]

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::header,
    response::IntoResponse,
    routing::{get, post},
};
use clap::Parser;
use ktp_gateway::proto::{
    GetKtpResultRequest, SubmitKtpRequest, ktp_service_client::KtpServiceClient,
    submit_ktp_request::ImageSource,
};
use ktp_testkit::error_table::CODE_NAMES;
use tonic::{Code, transport::Endpoint};

mod waits;

/// Drives the gateway binary with concurrent calls against a slow fake upstream.
#[derive(Debug, Parser)]
struct Args {
    /// The gateway binary (a release build).
    #[arg(long, default_value = "target/release/ktp-gateway")]
    gateway: PathBuf,
    /// Seconds of load (at most 600).
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Short run: 5 seconds.
    #[arg(long)]
    quick: bool,
    /// Calls in flight at all times.
    #[arg(long, default_value_t = 2000)]
    concurrency: usize,
    /// HTTP/2 connections to the gateway (it allows 1,024 streams each).
    /// Default: 8; with `--waits`, one per 1,000 waits, so that every wait
    /// is truly in flight.
    #[arg(long)]
    connections: Option<usize>,
    /// Fake upstream latency per request, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Submit images of this many bytes (`SubmitKtp`) instead of reading
    /// results.
    #[arg(long)]
    submit_bytes: Option<usize>,
    /// Waits mode: this many concurrent waiting calls (each its own job),
    /// instead of the load above.
    #[arg(long)]
    waits: Option<usize>,
    /// Waits mode: each job finishes this long after its submit (`3s`,
    /// `500ms`, `2m`; `1h` for jobs that never finish within the run).
    #[arg(long, default_value = "3s")]
    job_time: String,
    /// Waits mode: `ExtractKtp` (submit through the gateway, then wait)
    /// instead of `GetKtpResult(wait = true)` on jobs the bench submits to
    /// the fake upstream itself.
    #[arg(long)]
    extract: bool,
    /// Waits mode, `GetKtpResult`: each call submits its job through the
    /// gateway first (`SubmitKtp`, a small PNG), as a client would, so the
    /// gateway knows when it was submitted.
    #[arg(long, conflicts_with = "extract")]
    submit: bool,
    /// Waits mode: the deadline of each call (`wait.max_wait` is set above
    /// it, so the caller's deadline ends a wait).
    #[arg(long, default_value = "15s")]
    deadline: String,
    /// Waits mode: start the calls evenly over this long instead of all at
    /// once (for the figures of jobs submitted after the first ones were
    /// seen to finish).
    #[arg(long, default_value = "0s")]
    spread: String,
    /// Waits mode: the figures are also given for the jobs submitted after
    /// this many jobs had been answered with their result upstream.
    #[arg(long, default_value_t = 20)]
    seen_jobs: usize,
}

/// The deadline each call carries: far above the expected latency, so a
/// stuck call ends as an error instead of stalling the run.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// How long the gateway may take to start, and to stop after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A fictional success body, as the upstream would send it.
const BODY: &str = r#"{"message":"success extract ktp data","data":{"nik":"3273016505900002","full_name":"SITI CONTOH","place_of_birth":"BANDUNG","date_of_birth":"25-05-1990","gender":"PEREMPUAN","blood_type":"O","address":"JL. CONTOH NO. 1","rt_rw":"001/002","administrative_village":"CITARUM","district":"BANDUNG WETAN","city":"KOTA BANDUNG","state":"JAWA BARAT","religion":"ISLAM","marital_status":"KAWIN","occupation":"KARYAWAN SWASTA","nationality":"WNI","image_quality":{"blur":false,"dark":false,"flashlight":false,"grayscale":false}}}"#;

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.quick {
        args.duration = 5;
    }
    args.duration = args.duration.clamp(1, 600);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = if let Some(n) = args.waits {
        match waits::Settings::from_args(&args, n) {
            Ok(settings) => runtime.block_on(waits::run(&args.gateway, &settings)),
            Err(e) => Err(e),
        }
    } else {
        runtime.block_on(run(&args))
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Requests the fake upstream is answering now, the most at once, and in all.
#[derive(Default)]
struct UpstreamCounters {
    busy: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicU64,
}

struct Upstream {
    latency: Duration,
    counters: UpstreamCounters,
}

async fn result(State(upstream): State<Arc<Upstream>>) -> impl IntoResponse {
    answer(&upstream, BODY).await
}

/// A submit: the whole body is read (as the vendor must), then accepted.
async fn submit(State(upstream): State<Arc<Upstream>>, body: Bytes) -> impl IntoResponse {
    drop(body);
    answer(&upstream, r#"{"message":"accepted","data":{}}"#).await
}

async fn answer(upstream: &Upstream, body: &'static str) -> impl IntoResponse + use<> {
    let c = &upstream.counters;
    let busy = c.busy.fetch_add(1, Ordering::Relaxed) + 1;
    c.peak.fetch_max(busy, Ordering::Relaxed);
    c.total.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(upstream.latency).await;
    c.busy.fetch_sub(1, Ordering::Relaxed);
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// What one caller saw.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    codes: BTreeMap<&'static str, u64>,
}

async fn run(args: &Args) -> Result<bool, String> {
    // The fake upstream.
    let upstream = Arc::new(Upstream {
        latency: Duration::from_millis(args.latency_ms),
        counters: UpstreamCounters::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the fake upstream: {e}"))?;
    let upstream_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/ktp/id/extract-async/result", get(result))
        .route("/ktp/id/extract-async", post(submit))
        .layer(DefaultBodyLimit::disable())
        .with_state(upstream.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The gateway.
    let mut gateway = Gateway::start(&args.gateway, upstream_addr, &[])?;
    let rss = RssPoller::start(gateway.pid());
    let connections = args.connections.unwrap_or(8).max(1);
    println!(
        "load: gateway pid {} on {}, upstream {upstream_addr} ({} ms), {} calls in flight over {} \
         connections for {} s",
        gateway.pid(),
        gateway.addr,
        args.latency_ms,
        args.concurrency,
        connections,
        args.duration
    );

    // The callers.
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        let channel = Endpoint::from_shared(format!("http://{}", gateway.addr))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to the gateway: {e}"))?;
        clients.push(KtpServiceClient::new(channel));
    }
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(args.duration);
    let image = args.submit_bytes.map(png_of);
    let callers: Vec<_> = (0..args.concurrency)
        .map(|caller| {
            let client = clients[caller % clients.len()].clone();
            tokio::spawn(call_until(client, caller, stop_at, image.clone()))
        })
        .collect();
    let mut total = Tally::default();
    for caller in callers {
        let tally = caller.await.map_err(|e| format!("caller task: {e}"))?;
        total.latencies_us.extend(tally.latencies_us);
        for (code, n) in tally.codes {
            *total.codes.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    let (peak_rss_kib, start_rss_kib) = rss.stop();
    let hwm_kib = status_kib(gateway.pid(), "VmHWM:").unwrap_or(0);
    let cpu_secs = cpu_seconds(gateway.pid()).unwrap_or(0.0);
    let stopped = gateway.stop();

    // The report.
    let calls = total.latencies_us.len() as u64;
    let ok = total.codes.get("OK").copied().unwrap_or(0);
    let unexpected = calls - ok;
    total.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        let lat = &total.latencies_us;
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        f64::from(lat[i]) / 1000.0
    };
    let throughput = calls as f64 / elapsed.as_secs_f64();
    let c = &upstream.counters;
    println!("load: {calls} calls in {:.1} s", elapsed.as_secs_f64());
    println!("load: results by code: {:?}", total.codes);
    println!(
        "load: latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "load: upstream requests {}, at most {} at once",
        c.total.load(Ordering::Relaxed),
        c.peak.load(Ordering::Relaxed)
    );
    println!(
        "load: gateway RSS {:.1} MiB at start, peak {:.1} MiB polled, VmHWM {:.1} MiB; {}",
        start_rss_kib as f64 / 1024.0,
        peak_rss_kib as f64 / 1024.0,
        hwm_kib as f64 / 1024.0,
        gateway.log_summary()
    );
    println!(
        "load: gateway CPU {cpu_secs:.1} s ({:.2} cores on average); load generator and fake \
         upstream share the same machine",
        cpu_secs / elapsed.as_secs_f64()
    );
    if let Some(bytes) = args.submit_bytes {
        let growth_kib = peak_rss_kib.max(hwm_kib).saturating_sub(start_rss_kib);
        let per_call = growth_kib as f64 * 1024.0 / args.concurrency as f64;
        println!(
            "load: RSS growth {:.1} MiB for {} submits of {bytes} bytes in flight: {:.2} MB per \
             submit, {:.2} × the image",
            growth_kib as f64 / 1024.0,
            args.concurrency,
            per_call / 1e6,
            per_call / bytes as f64
        );
    }
    match &stopped {
        Ok(status) => println!("load: gateway stopped on SIGTERM: {status}"),
        Err(e) => println!("load: {e}"),
    }
    let errors: Vec<String> = total
        .codes
        .iter()
        .filter(|(code, _)| **code != "OK")
        .map(|(code, n)| format!("{code}={n}"))
        .collect();
    println!(
        "SUMMARY load: {} s, {} concurrent, {} upstream latency: {calls} calls, {throughput:.0} calls/s, \
         p50 {:.1} ms, p99 {:.1} ms, errors {} ({unexpected} unexpected), gateway peak RSS {:.1} MiB",
        args.duration,
        args.concurrency,
        format_args!("{} ms", args.latency_ms),
        pct(0.50),
        pct(0.99),
        if errors.is_empty() {
            "none".to_owned()
        } else {
            errors.join(" ")
        },
        peak_rss_kib.max(hwm_kib) as f64 / 1024.0
    );
    Ok(unexpected == 0 && calls > 0 && stopped.is_ok())
}

/// One caller: calls back to back, each with a fresh reference id, until
/// `stop_at`.
async fn call_until(
    mut client: KtpServiceClient<tonic::transport::Channel>,
    caller: usize,
    stop_at: Instant,
    image: Option<Bytes>,
) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0u64;
    while Instant::now() < stop_at {
        let reference_id = format!("LOAD-{caller}-{n}");
        n += 1;
        let started = Instant::now();
        let answer = match &image {
            None => {
                let mut request = tonic::Request::new(GetKtpResultRequest {
                    read_mask: None,
                    reference_id,
                    wait: false,
                });
                request.set_timeout(CALL_DEADLINE);
                client.get_ktp_result(request).await.map(drop)
            }
            Some(image) => {
                let mut request = tonic::Request::new(SubmitKtpRequest {
                    image_source: Some(ImageSource::Image(image.clone())),
                    validate_quality: false,
                    reference_id,
                });
                request.set_timeout(CALL_DEADLINE);
                client.submit_ktp(request).await.map(drop)
            }
        };
        let code = match answer {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        };
        let us = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        tally.latencies_us.push(us);
        *tally.codes.entry(code_name(code)).or_default() += 1;
    }
    tally
}

/// A PNG of `bytes` bytes: the header of a 1280×800 image, then filler (the
/// gateway reads only the header).
fn png_of(bytes: usize) -> Bytes {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend_from_slice(&1280u32.to_be_bytes());
    png.extend_from_slice(&800u32.to_be_bytes());
    png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    png.resize(bytes.max(png.len()), 0);
    Bytes::from(png)
}

/// The canonical upper-case name of a code, as the report prints it.
fn code_name(code: Code) -> &'static str {
    CODE_NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

/// The gateway subprocess: clean environment, ephemeral loopback ports,
/// JSON logs at `info` (one line per call, as in production) read by a
/// thread that counts them.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    /// The metrics endpoint (`GET /metrics`).
    metrics_addr: Option<SocketAddr>,
    lines: Arc<AtomicU64>,
    warn_or_error: Arc<AtomicU64>,
}

impl Gateway {
    /// `extra`: settings of the mode, set after the defaults below and
    /// before the environment's `KTP_GATEWAY__*`, which override them.
    fn start(
        bin: &PathBuf,
        upstream: SocketAddr,
        extra: &[(&str, String)],
    ) -> Result<Self, String> {
        let mut cmd = Command::new(bin);
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.envs([
            ("KTP_GATEWAY__SERVER__GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("KTP_GATEWAY__METRICS__ADDR", "127.0.0.1:0".to_owned()),
            (
                "KTP_GATEWAY__UPSTREAM__BASE_URL",
                format!("http://{upstream}"),
            ),
            ("KTP_GATEWAY__UPSTREAM__APP_ID", "load-app-id".to_owned()),
            ("KTP_GATEWAY__UPSTREAM__API_KEY", "load-api-key".to_owned()),
            // The load carries no tokens: callers unauthenticated, explicitly.
            (
                "KTP_GATEWAY__AUTH__ALLOW_UNAUTHENTICATED",
                "true".to_owned(),
            ),
            ("KTP_GATEWAY__LOG__FORMAT", "json".to_owned()),
            ("KTP_GATEWAY__LOG__FILTER", "info".to_owned()),
            ("KTP_GATEWAY__SERVER__DRAIN_DELAY", "100ms".to_owned()),
        ]);
        cmd.envs(extra.iter().map(|(k, v)| (k, v)));
        // Any KTP_GATEWAY__* of our environment overrides the above.
        cmd.envs(std::env::vars().filter(|(k, _)| k.starts_with("KTP_GATEWAY__")));
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(AtomicU64::new(0));
        let warn_or_error = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let (count, warned) = (lines.clone(), warn_or_error.clone());
        thread::spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                count.fetch_add(1, Ordering::Relaxed);
                let loud =
                    line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#);
                // Show the first few; count them all.
                if loud && warned.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("load: gateway: {line}");
                }
                if !announced && line.contains("ktp-gateway serving") {
                    announced = true;
                    let _ = tx.send(line);
                }
            }
        });
        let serving = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            let _ = child.kill();
            format!("the gateway did not announce its address within {START_TIMEOUT:?}")
        })?;
        let serving_line = serde_json::from_str::<serde_json::Value>(&serving).ok();
        let field = |name: &str| -> Option<SocketAddr> {
            serving_line.as_ref()?[name].as_str()?.parse().ok()
        };
        let addr =
            field("addr").ok_or_else(|| format!("no addr in the serving line: {serving}"))?;
        let metrics_addr = field("metrics_addr");
        Ok(Self {
            child,
            addr,
            metrics_addr,
            lines,
            warn_or_error,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_summary(&self) -> String {
        format!(
            "{} log lines, {} at WARN or ERROR",
            self.lines.load(Ordering::Relaxed),
            self.warn_or_error.load(Ordering::Relaxed)
        )
    }

    /// SIGTERM, then waits; kills it if it does not exit in time.
    fn stop(&mut self) -> Result<std::process::ExitStatus, String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(status),
                Ok(Some(status)) => return Err(format!("gateway exited with {status}")),
                #[expect(
                    clippy::disallowed_methods,
                    reason = "called once the load is over: blocking this worker delays nothing"
                )]
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "gateway still running {STOP_TIMEOUT:?} after SIGTERM; killed"
                    ));
                }
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls the gateway's `VmRSS` on a thread until stopped.
struct RssPoller {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<(u64, u64)>,
}

impl RssPoller {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let first = status_kib(pid, "VmRSS:").unwrap_or(0);
            let mut peak = first;
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS:") {
                    peak = peak.max(kib);
                }
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a plain thread of its own, not a runtime worker"
                )]
                thread::sleep(Duration::from_millis(50));
            }
            (peak, first)
        });
        Self { stop, handle }
    }

    /// (peak, first) in KiB.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or((0, 0))
    }
}

/// A `kB` field of `/proc/PID/status`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// User + system CPU time of a process so far (`/proc/PID/stat` fields 14
/// and 15, in clock ticks of `getconf CLK_TCK`).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Some(ticks / hz)
}
