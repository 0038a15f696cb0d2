//! End-to-end latency and throughput of `GetKtpResult` through the real
//! server, the real upstream client and the embedded sandbox upstream (all
//! in this one process, on loopback).
//!
//! Run: `cargo bench --bench gateway` (release build). Prints one table row
//! per concurrency level. `BENCH_CALLS` sets the calls per level (default 20000).
//! The load generator, the gateway and the sandbox share the machine's cores,
//! so the figures are a floor on what the gateway alone can do.
//!
//! Every call is one upstream request: each task asks for a job of its own
//! (submitted to the sandbox first, one per task), so no two calls in flight
//! share a reference id and coalescing, on as by default, never merges them.
//! The bench reads the gateway's `ktp_gateway_upstream_requests_total` after
//! each level and stops when upstream requests and calls differ.
#![expect(
    clippy::disallowed_macros,
    reason = "a bench: its report is its stdout, where no log line goes"
)]

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use ktp_gateway::{
    config::{Settings, Sources},
    proto::{
        GetKtpResultRequest, SubmitKtpRequest, ktp_service_client::KtpServiceClient,
        submit_ktp_request::ImageSource,
    },
    server,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::transport::Channel;

const CONCURRENCY: &[usize] = &[1, 16, 64];

/// A blank card-sized PNG: the sandbox answers its card for any image.
const IMAGE: &[u8] = include_bytes!("../examples/data/blank-720x480.png");

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(calls));
}

async fn run(calls: usize) {
    // Bench defaults, then any KTP_GATEWAY__* variable of the environment.
    let env = [
        ("KTP_GATEWAY__SERVER__GRPC_ADDR", "127.0.0.1:0"),
        ("KTP_GATEWAY__METRICS__ADDR", "127.0.0.1:0"),
        ("KTP_GATEWAY__LOG__FILTER", "off"),
        // The jobs the tasks ask for are ready at once.
        ("KTP_GATEWAY__SANDBOX__PROCESSING_TIME", "1ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain(std::env::vars().filter(|(k, _)| k.starts_with("KTP_GATEWAY__")))
    .collect();
    let settings = Settings::load(Sources {
        env: Some(env),
        sandbox: true,
        ..Default::default()
    })
    .expect("settings");
    let listener = tokio::net::TcpListener::bind(*settings.server.grpc_addr)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let metrics_listener = tokio::net::TcpListener::bind(*settings.metrics.addr)
        .await
        .expect("bind the metrics port");
    let metrics_addr = metrics_listener.local_addr().expect("metrics addr");
    tokio::spawn(server::run_with(
        settings,
        listener,
        Some(metrics_listener),
        std::future::pending(),
    ));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    let most = CONCURRENCY.iter().copied().max().unwrap_or(1);
    let jobs = submit_jobs(&channel, most).await;
    // Let the jobs finish "processing".
    tokio::time::sleep(Duration::from_millis(50)).await;

    println!(
        "calls per level: {calls}; {} CPU(s); one reference id per task, coalescing on",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>11} {:>12} {:>9} {:>9} {:>9} {:>14}",
        "concurrency", "calls/s", "p50 ms", "p90 ms", "p99 ms", "upstream/call"
    );
    for &concurrency in CONCURRENCY {
        let before = upstream_requests(metrics_addr).await;
        // Warm up the pools.
        let warm_up = drive(&channel, &jobs[..concurrency], concurrency * 10).await;
        let started = Instant::now();
        let mut latencies = drive(&channel, &jobs[..concurrency], calls).await;
        let elapsed = started.elapsed();
        let made = warm_up.len() + latencies.len();
        let upstream = upstream_requests(metrics_addr).await - before;
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{concurrency:>11} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>14.3}",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.90)),
            ms(pct(0.99)),
            upstream as f64 / made as f64,
        );
        assert_eq!(
            upstream, made as u64,
            "every call must be one upstream request (none shared, none retried)"
        );
    }
}

/// One sandbox job per task, each under its own reference id.
async fn submit_jobs(channel: &Channel, count: usize) -> Vec<String> {
    let mut client = KtpServiceClient::new(channel.clone());
    let mut ids = Vec::with_capacity(count);
    for task in 0..count {
        let id = format!("BENCH-TASK-{task}");
        client
            .submit_ktp(SubmitKtpRequest {
                image_source: Some(ImageSource::Image(IMAGE.to_vec().into())),
                validate_quality: false,
                reference_id: id.clone(),
            })
            .await
            .expect("the sandbox takes the job");
        ids.push(id);
    }
    ids
}

/// `calls` calls spread over one task per id in `jobs`, sharing one HTTP/2
/// channel; each task asks for its own job only.
async fn drive(channel: &Channel, jobs: &[String], calls: usize) -> Vec<Duration> {
    let per_task = calls.div_ceil(jobs.len());
    let tasks: Vec<_> = jobs
        .iter()
        .map(|id| {
            let mut client = KtpServiceClient::new(channel.clone());
            let id = id.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let started = Instant::now();
                    let request = GetKtpResultRequest {
                        read_mask: None,
                        reference_id: id.clone(),
                        wait: false,
                    };
                    client
                        .get_ktp_result(request)
                        .await
                        .expect("sandbox call succeeds");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(calls);
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all
}

/// The sum of `ktp_gateway_upstream_requests_total` over its labels, from
/// the gateway's own `GET /metrics`.
async fn upstream_requests(metrics: SocketAddr) -> u64 {
    let mut stream = tokio::net::TcpStream::connect(metrics)
        .await
        .expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await
        .expect("ask for /metrics");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .await
        .expect("read /metrics");
    text.lines()
        .filter(|l| l.starts_with("ktp_gateway_upstream_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
