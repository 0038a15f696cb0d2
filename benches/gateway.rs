//! End-to-end latency and throughput of `GetKtpResult` through the real
//! server, the real upstream client and the embedded sandbox upstream (all
//! in this one process, on loopback).
//!
//! Run: `cargo bench --bench gateway` (release build). Prints one table row
//! per concurrency level. `BENCH_CALLS` sets the calls per level (default 20000).
//! The load generator, the gateway and the sandbox share the machine's cores,
//! so the figures are a floor on what the gateway alone can do.
#![expect(
    clippy::disallowed_macros,
    reason = "a bench: its report is its stdout, where no log line goes"
)]

use std::time::{Duration, Instant};

use ktp_gateway::{
    config::{Settings, Sources},
    proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient},
    server,
};
use tonic::transport::Channel;

const CONCURRENCY: &[usize] = &[1, 16, 64];

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
    tokio::spawn(server::run(settings, listener, std::future::pending()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    println!(
        "calls per level: {calls}; {} CPU(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>11} {:>12} {:>9} {:>9} {:>9}",
        "concurrency", "calls/s", "p50 ms", "p90 ms", "p99 ms"
    );
    for &concurrency in CONCURRENCY {
        // Warm up the pools.
        drive(&channel, concurrency, concurrency * 10).await;
        let started = Instant::now();
        let mut latencies = drive(&channel, concurrency, calls).await;
        let elapsed = started.elapsed();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{concurrency:>11} {:>12.0} {:>9.3} {:>9.3} {:>9.3}",
            calls as f64 / elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.90)),
            ms(pct(0.99)),
        );
    }
}

/// `calls` calls spread over `concurrency` tasks sharing one HTTP/2 channel.
async fn drive(channel: &Channel, concurrency: usize, calls: usize) -> Vec<Duration> {
    let per_task = calls.div_ceil(concurrency);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut client = KtpServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for _ in 0..per_task {
                    let started = Instant::now();
                    let request = GetKtpResultRequest {
                        read_mask: None,
                        reference_id: "REFERENCE_ID_KTP".into(),
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
