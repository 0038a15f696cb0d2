//! `--waits N`: what waiting calls cost. N concurrent waiting calls, each for
//! a job of its own that finishes `--job-time` after its submit, against a
//! fake upstream that answers the result call 404
//! `INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND` until then and the usual success
//! body after.
//!
//! - `GetKtpResult(wait = true)` (the default): the bench submits each job to
//!   the fake upstream itself (its clock starts then), right before its call,
//!   so the gateway holds waits only, not submits.
//! - `ExtractKtp` (`--extract`): the gateway submits (a small PNG) and waits;
//!   the job's clock starts when the fake receives the submit.
//!
//! The fake counts its result GETs per job, its TCP connections (open at
//! once, at most; accepted in all). The report gives calls OK and lost (any
//! answer but OK, except the wait's "not ready" for a job that was indeed not
//! ready when the answer came), the gateway's idle and peak RSS and
//! (peak − idle) ÷ N, the waits in flight at once (the client's count and the
//! gateway's own gauge, scraped), the upstream connections, GETs per job, and
//! the added latency: answer time − (submit time + job time). With
//! `--spread`, the same figures for the jobs submitted after `--seen-jobs`
//! jobs had been answered with their result upstream.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ktp_gateway::proto::{
    ExtractKtpRequest, GetKtpResultRequest, SubmitKtpRequest, extract_ktp_request::ImageSource,
    ktp_service_client::KtpServiceClient, submit_ktp_request,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tonic::{Code, transport::Endpoint};
use tonic_types::StatusExt;

use super::{Args, BODY, Gateway, RssPoller, code_name, cpu_seconds, png_of, status_kib};

/// The upstream's answer for a job that has not finished yet.
const NOT_FOUND_BODY: &str =
    r#"{"error_code":"INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND","message":"reference id not found"}"#;
/// Streams per client connection: under the gateway's 1,024
/// (`server.max_concurrent_streams`), so every wait is in flight at once.
const STREAMS_PER_CONNECTION: usize = 1000;
/// `upstream.max_connections` when the environment does not set it.
const DEFAULT_MAX_CONNECTIONS: &str = "2048";
/// Bound on spread + deadline, so the run fits the script's hard timeout.
const MAX_RUN: Duration = Duration::from_secs(600);
/// How often the gateway's in-flight gauge is scraped during the waits.
const SCRAPE_EVERY: Duration = Duration::from_millis(500);

/// The waits mode's settings, from the command line.
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    n: usize,
    job_time: Duration,
    deadline: Duration,
    spread: Duration,
    extract: bool,
    /// `GetKtpResult` mode: submit through the gateway first.
    submit: bool,
    connections: usize,
    seen_jobs: usize,
}

impl Settings {
    pub(crate) fn from_args(args: &Args, n: usize) -> Result<Self, String> {
        let n = n.max(1);
        let deadline = parse_duration(&args.deadline)?;
        let spread = parse_duration(&args.spread)?;
        if deadline.is_zero() || deadline + spread > MAX_RUN {
            return Err(format!(
                "--deadline must be above zero and --deadline + --spread at most {MAX_RUN:?}"
            ));
        }
        Ok(Self {
            n,
            job_time: parse_duration(&args.job_time)?,
            deadline,
            spread,
            extract: args.extract,
            submit: args.submit,
            connections: args
                .connections
                .unwrap_or_else(|| n.div_ceil(STREAMS_PER_CONNECTION))
                .max(1),
            seen_jobs: args.seen_jobs,
        })
    }

    fn method(&self) -> &'static str {
        if self.extract {
            "ExtractKtp"
        } else if self.submit {
            "SubmitKtp + GetKtpResult(wait = true)"
        } else {
            "GetKtpResult(wait = true)"
        }
    }
}

/// `3s`, `500ms`, `2m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((t, "s"), |i| t.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (e.g. 3s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("not a duration: {text:?} (e.g. 3s, 500ms, 2m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// One job of the fake upstream.
struct Job {
    submitted: Instant,
    gets: u32,
    /// When the first result GET found it finished.
    answered: Option<Instant>,
}

/// TCP connections of the fake upstream.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicU64,
}

/// The fake upstream: jobs by reference id, and what it saw.
struct Fake {
    job_time: Duration,
    jobs: Mutex<HashMap<String, Job>>,
    gets: AtomicU64,
    unknown_gets: AtomicU64,
    submits: AtomicU64,
    connections: Arc<Connections>,
}

impl Fake {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job submitted now (the first submit of an id counts; a retry does
    /// not restart its clock).
    fn submit(&self, reference_id: &str) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(reference_id.to_owned())
            .or_insert_with(|| Job {
                submitted: Instant::now(),
                gets: 0,
                answered: None,
            });
    }
}

async fn result(
    State(fake): State<Arc<Fake>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    fake.gets.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let ready = {
        let mut jobs = fake.lock();
        match query.get("reference_id").and_then(|id| jobs.get_mut(id)) {
            Some(job) => {
                job.gets += 1;
                let ready = now >= job.submitted + fake.job_time;
                if ready && job.answered.is_none() {
                    job.answered = Some(now);
                }
                ready
            }
            None => {
                fake.unknown_gets.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    };
    let json = [(header::CONTENT_TYPE, "application/json")];
    if ready {
        (json, BODY).into_response()
    } else {
        (StatusCode::NOT_FOUND, json, NOT_FOUND_BODY).into_response()
    }
}

async fn submit(State(fake): State<Arc<Fake>>, body: Bytes) -> Response {
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| Some(v["reference_id"].as_str()?.to_owned()));
    let Some(id) = id else {
        return (StatusCode::BAD_REQUEST, "no reference_id").into_response();
    };
    fake.submit(&id);
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"message":"accepted","data":{}}"#,
    )
        .into_response()
}

/// A listener that counts the connections it accepted and those still open.
struct CountingListener {
    listener: TcpListener,
    connections: Arc<Connections>,
}

/// An accepted connection; dropping it counts it closed.
struct Counted {
    stream: TcpStream,
    connections: Arc<Connections>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Counted, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let c = &self.connections;
                    let open = c.open.fetch_add(1, Ordering::Relaxed) + 1;
                    c.peak.fetch_max(open, Ordering::Relaxed);
                    c.total.fetch_add(1, Ordering::Relaxed);
                    let connections = Arc::clone(c);
                    return (
                        Counted {
                            stream,
                            connections,
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Calls in flight now and at most, as the client counts them.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// What one call saw.
struct Outcome {
    reference_id: String,
    answered: Instant,
    code: Code,
    /// `ErrorInfo.reason` of an error.
    reason: Option<String>,
}

/// One waiting call, started at `start_at`.
async fn one_wait(
    mut client: KtpServiceClient<tonic::transport::Channel>,
    reference_id: String,
    start_at: Instant,
    settings: Arc<Settings>,
    fake: Arc<Fake>,
    in_flight: Arc<InFlight>,
    image: Bytes,
) -> Outcome {
    tokio::time::sleep_until(start_at).await;
    let n = in_flight.now.fetch_add(1, Ordering::Relaxed) + 1;
    in_flight.peak.fetch_max(n, Ordering::Relaxed);
    let answer = if settings.extract {
        let mut request = tonic::Request::new(ExtractKtpRequest {
            image_source: Some(ImageSource::Image(image)),
            validate_quality: false,
            reference_id: reference_id.clone(),
            read_mask: None,
        });
        request.set_timeout(settings.deadline);
        client.extract_ktp(request).await.map(drop)
    } else {
        if settings.submit {
            let mut request = tonic::Request::new(SubmitKtpRequest {
                image_source: Some(submit_ktp_request::ImageSource::Image(image)),
                validate_quality: false,
                reference_id: reference_id.clone(),
            });
            request.set_timeout(settings.deadline);
            if let Err(status) = client.submit_ktp(request).await {
                in_flight.now.fetch_sub(1, Ordering::Relaxed);
                return Outcome {
                    reference_id,
                    answered: Instant::now(),
                    code: status.code(),
                    reason: status.get_details_error_info().map(|info| info.reason),
                };
            }
        } else {
            fake.submit(&reference_id);
        }
        let mut request = tonic::Request::new(GetKtpResultRequest {
            reference_id: reference_id.clone(),
            wait: true,
            read_mask: None,
        });
        request.set_timeout(settings.deadline);
        client.get_ktp_result(request).await.map(drop)
    };
    let answered = Instant::now();
    in_flight.now.fetch_sub(1, Ordering::Relaxed);
    let (code, reason) = match answer {
        Ok(()) => (Code::Ok, None),
        Err(status) => (
            status.code(),
            status.get_details_error_info().map(|info| info.reason),
        ),
    };
    Outcome {
        reference_id,
        answered,
        code,
        reason,
    }
}

/// The waits mode: fake upstream, gateway, N waiting calls, report.
pub(crate) async fn run(bin: &Path, settings: &Settings) -> Result<bool, String> {
    let settings = Arc::new(*settings);
    let connections = Arc::new(Connections::default());
    let fake = Arc::new(Fake {
        job_time: settings.job_time,
        jobs: Mutex::new(HashMap::with_capacity(settings.n)),
        gets: AtomicU64::new(0),
        unknown_gets: AtomicU64::new(0),
        submits: AtomicU64::new(0),
        connections: Arc::clone(&connections),
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the fake upstream: {e}"))?;
    let upstream_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/ktp/id/extract-async/result", get(result))
        .route("/ktp/id/extract-async", post(submit))
        .layer(DefaultBodyLimit::disable())
        .with_state(Arc::clone(&fake));
    let listener = CountingListener {
        listener,
        connections,
    };
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The gateway, with room for every wait.
    let n = settings.n;
    let max_wait = (settings.deadline + Duration::from_secs(5)).min(Duration::from_secs(600));
    let mut extra = vec![
        ("KTP_GATEWAY__SERVER__MAX_IN_FLIGHT", (n + 64).to_string()),
        (
            "KTP_GATEWAY__WAIT__MAX_WAIT",
            format!("{}ms", max_wait.as_millis()),
        ),
    ];
    if settings.extract || settings.submit {
        // Every submit holds an image slot while it is sent.
        extra.push(("KTP_GATEWAY__SUBMIT__MAX_IN_FLIGHT", n.max(16).to_string()));
    }
    let mut gateway = Gateway::start(&bin.to_path_buf(), upstream_addr, &extra)?;
    let rss = RssPoller::start(gateway.pid());
    let max_connections = std::env::var("KTP_GATEWAY__UPSTREAM__MAX_CONNECTIONS")
        .unwrap_or_else(|_| DEFAULT_MAX_CONNECTIONS.to_owned());
    println!(
        "waits: gateway pid {} on {}, upstream {upstream_addr}; {n} × {}, jobs of {:?}, deadline \
         {:?}, started over {:?}, {} client connections, upstream.max_connections {max_connections}",
        gateway.pid(),
        gateway.addr,
        settings.method(),
        settings.job_time,
        settings.deadline,
        settings.spread,
        settings.connections,
    );
    for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("KTP_GATEWAY__")) {
        println!("waits: environment {k}={v}");
    }

    let mut clients = Vec::with_capacity(settings.connections);
    for _ in 0..settings.connections {
        let channel = Endpoint::from_shared(format!("http://{}", gateway.addr))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("cannot connect to the gateway: {e}"))?;
        clients.push(KtpServiceClient::new(channel));
    }
    let before_kib = status_kib(gateway.pid(), "VmRSS:").unwrap_or(0);

    // The waits: all at once, or spread evenly.
    let in_flight = Arc::new(InFlight::default());
    let image = png_of(1024);
    let t0 = Instant::now() + Duration::from_millis(200);
    let started = Instant::now();
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let offset = settings.spread.mul_f64(i as f64 / n as f64);
            tokio::spawn(one_wait(
                clients[i % clients.len()].clone(),
                format!("WAIT-{i}"),
                t0 + offset,
                Arc::clone(&settings),
                Arc::clone(&fake),
                Arc::clone(&in_flight),
                image.clone(),
            ))
        })
        .collect();
    let stop_scraping = Arc::new(AtomicBool::new(false));
    let scraper = gateway
        .metrics_addr
        .map(|addr| tokio::spawn(scrape_peak(addr, Arc::clone(&stop_scraping))));
    let mut outcomes = Vec::with_capacity(n);
    for call in calls {
        outcomes.push(call.await.map_err(|e| format!("caller task: {e}"))?);
    }
    let elapsed = started.elapsed();
    stop_scraping.store(true, Ordering::Relaxed);
    let gateway_peak_in_flight = match scraper {
        Some(task) => task.await.ok().flatten(),
        None => None,
    };
    let (polled_peak_kib, idle_kib) = rss.stop();
    let hwm_kib = status_kib(gateway.pid(), "VmHWM:").unwrap_or(0);
    let cpu = cpu_seconds(gateway.pid()).unwrap_or(0.0);
    let stopped = gateway.stop();

    let report = Report::new(&settings, &fake, &outcomes);
    let peak_kib = polled_peak_kib.max(hwm_kib);
    // Per call in flight at once: N, unless --spread kept fewer going.
    let peak_waits = in_flight.peak.load(Ordering::Relaxed).max(1);
    let per_wait_kib = peak_kib.saturating_sub(idle_kib) as f64 / peak_waits as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "waits: {n} calls in {:.1} s: OK {}, not ready at the end of the wait (job not ready) {}, \
         lost {}; by code: {}",
        elapsed.as_secs_f64(),
        report.ok,
        report.not_ready,
        report.lost,
        report.codes(),
    );
    let gateway_in_flight =
        gateway_peak_in_flight.map_or("not scraped".to_owned(), |g| format!("{g:.0}"));
    println!(
        "waits: in flight at once: {} (client), {gateway_in_flight} (the gateway's \
         ktp_gateway_grpc_requests_in_flight + _waiting, scraped every {SCRAPE_EVERY:?})",
        in_flight.peak.load(Ordering::Relaxed),
    );
    println!(
        "waits: gateway RSS idle {:.1} MiB, {:.1} MiB with the client connections open, peak \
         {:.1} MiB (polled {:.1}, VmHWM {:.1}): (peak − idle) ÷ {peak_waits} in flight = \
         {per_wait_kib:.1} KiB per waiting call; {}",
        mib(idle_kib),
        mib(before_kib),
        mib(peak_kib),
        mib(polled_peak_kib),
        mib(hwm_kib),
        gateway.log_summary(),
    );
    let c = &fake.connections;
    println!(
        "waits: upstream: {} result GETs ({} for ids never submitted), {} submits{}; \
         connections: {} open at once at most, {} accepted in all",
        fake.gets.load(Ordering::Relaxed),
        fake.unknown_gets.load(Ordering::Relaxed),
        fake.submits.load(Ordering::Relaxed),
        if settings.extract || settings.submit {
            " (through the gateway)"
        } else {
            " (by the bench, straight to the fake)"
        },
        c.peak.load(Ordering::Relaxed),
        c.total.load(Ordering::Relaxed),
    );
    println!("waits: all jobs: {}", report.all.line());
    if !settings.spread.is_zero() {
        println!(
            "waits: by submit order, each tenth of the jobs: median added latency/GETs per job: {}",
            report.tenths()
        );
    }
    match &report.after_seen {
        Some(figures) => println!(
            "waits: jobs submitted after {} jobs were answered upstream: {}",
            settings.seen_jobs,
            figures.line()
        ),
        None => println!(
            "waits: no job was submitted after {} jobs were answered upstream (use --spread)",
            settings.seen_jobs
        ),
    }
    println!(
        "waits: gateway CPU {cpu:.1} s ({:.2} cores on average)",
        cpu / elapsed.as_secs_f64()
    );
    match &stopped {
        Ok(status) => println!("waits: gateway stopped on SIGTERM: {status}"),
        Err(e) => println!("waits: {e}"),
    }
    println!(
        "SUMMARY waits: {n} × {}, jobs {:?}, deadline {:?}, spread {:?}, upstream.max_connections \
         {max_connections}: OK {}, lost {}, not ready {}; RSS idle {:.1} MiB, peak {:.1} MiB, \
         {per_wait_kib:.1} KiB per waiting call; upstream connections peak {}, total {}; {}",
        settings.method(),
        settings.job_time,
        settings.deadline,
        settings.spread,
        report.ok,
        report.lost,
        report.not_ready,
        mib(idle_kib),
        mib(peak_kib),
        c.peak.load(Ordering::Relaxed),
        c.total.load(Ordering::Relaxed),
        report.all.line(),
    );
    Ok(report.lost == 0 && report.ok + report.not_ready == n && stopped.is_ok())
}

/// The figures of a set of jobs.
struct Figures {
    jobs: usize,
    /// GETs per job, sorted.
    gets: Vec<u32>,
    /// Answer time − ready time of the calls answered OK, in seconds, sorted.
    added: Vec<f64>,
}

impl Figures {
    fn line(&self) -> String {
        let total: u64 = self.gets.iter().map(|&g| u64::from(g)).sum();
        let mean = total as f64 / self.jobs.max(1) as f64;
        format!(
            "{} jobs, GETs per job {mean:.2} (median {}, p90 {}, max {}); added latency (answer − \
             (submit + job time)) median {:.3} s, p90 {:.3} s, max {:.3} s",
            self.jobs,
            pick(&self.gets, 0.5).unwrap_or(0),
            pick(&self.gets, 0.9).unwrap_or(0),
            pick(&self.gets, 1.0).unwrap_or(0),
            pick(&self.added, 0.5).unwrap_or(f64::NAN),
            pick(&self.added, 0.9).unwrap_or(f64::NAN),
            pick(&self.added, 1.0).unwrap_or(f64::NAN),
        )
    }
}

/// The `p` quantile of sorted values (nearest rank).
fn pick<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// The outcomes, judged.
struct Report {
    ok: usize,
    not_ready: usize,
    lost: usize,
    by_code: std::collections::BTreeMap<String, usize>,
    all: Figures,
    after_seen: Option<Figures>,
    /// Every job's submit, GETs and added latency, in submit order.
    timeline: Vec<(Instant, u32, Option<f64>)>,
}

impl Report {
    fn new(settings: &Settings, fake: &Fake, outcomes: &[Outcome]) -> Self {
        let jobs = fake.lock();
        // When the `seen_jobs`-th job was first answered with its result.
        let mut answered: Vec<Instant> = jobs.values().filter_map(|j| j.answered).collect();
        answered.sort_unstable();
        let seen_at = settings
            .seen_jobs
            .checked_sub(1)
            .and_then(|i| answered.get(i).copied());
        let (mut ok, mut not_ready, mut lost) = (0, 0, 0);
        let mut by_code = std::collections::BTreeMap::new();
        let mut all = Figures {
            jobs: 0,
            gets: Vec::new(),
            added: Vec::new(),
        };
        let mut after = Figures {
            jobs: 0,
            gets: Vec::new(),
            added: Vec::new(),
        };
        let mut timeline = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let job = jobs.get(&outcome.reference_id);
            let ready_at = job.map(|j| j.submitted + settings.job_time);
            let name = match &outcome.reason {
                Some(reason) => format!("{}/{reason}", code_name(outcome.code)),
                None => code_name(outcome.code).to_owned(),
            };
            *by_code.entry(name).or_insert(0) += 1;
            let wait_ended = matches!(outcome.code, Code::NotFound | Code::DeadlineExceeded);
            let added = match (outcome.code, ready_at) {
                (Code::Ok, Some(ready)) => {
                    ok += 1;
                    Some(
                        outcome
                            .answered
                            .saturating_duration_since(ready)
                            .as_secs_f64(),
                    )
                }
                (Code::Ok, None) => {
                    // An answer for a job the fake never saw: cannot be.
                    lost += 1;
                    None
                }
                (_, Some(ready)) if wait_ended && outcome.answered < ready => {
                    not_ready += 1;
                    None
                }
                _ => {
                    lost += 1;
                    None
                }
            };
            let Some(job) = job else { continue };
            let add = |f: &mut Figures| {
                f.jobs += 1;
                f.gets.push(job.gets);
                f.added.extend(added);
            };
            add(&mut all);
            timeline.push((job.submitted, job.gets, added));
            if seen_at.is_some_and(|t| job.submitted > t) {
                add(&mut after);
            }
        }
        for f in [&mut all, &mut after] {
            f.gets.sort_unstable();
            f.added.sort_unstable_by(f64::total_cmp);
        }
        timeline.sort_unstable_by_key(|&(submitted, ..)| submitted);
        Self {
            ok,
            not_ready,
            lost,
            by_code,
            all,
            after_seen: (after.jobs > 0).then_some(after),
            timeline,
        }
    }

    /// The jobs in tenths by submit order: each tenth's median added
    /// latency and GETs per job, to see the polling settle (or drift).
    fn tenths(&self) -> String {
        let n = self.timeline.len();
        (0..10)
            .filter_map(|t| {
                let part = &self.timeline[n * t / 10..n * (t + 1) / 10];
                if part.is_empty() {
                    return None;
                }
                let gets: u64 = part.iter().map(|&(_, g, _)| u64::from(g)).sum();
                let mut added: Vec<f64> = part.iter().filter_map(|&(.., a)| a).collect();
                added.sort_unstable_by(f64::total_cmp);
                Some(format!(
                    "{:.2} s/{:.2}",
                    pick(&added, 0.5).unwrap_or(f64::NAN),
                    gets as f64 / part.len() as f64
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn codes(&self) -> String {
        self.by_code
            .iter()
            .map(|(code, n)| format!("{code} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The most calls the gateway had at once, as its gauges say (scraped
/// until `stop`): `ktp_gateway_grpc_requests_in_flight`, plus
/// `ktp_gateway_grpc_requests_waiting` where waiting calls have a gauge of
/// their own.
async fn scrape_peak(addr: SocketAddr, stop: Arc<AtomicBool>) -> Option<f64> {
    let mut best: Option<f64> = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(text) = scrape(addr).await {
            let gauge = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            };
            if let Some(v) = gauge("ktp_gateway_grpc_requests_in_flight") {
                let v = v + gauge("ktp_gateway_grpc_requests_waiting").unwrap_or(0.0);
                best = Some(best.map_or(v, |b| b.max(v)));
            }
        }
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
    best
}

/// `GET /metrics`.
async fn scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    Some(text)
}
