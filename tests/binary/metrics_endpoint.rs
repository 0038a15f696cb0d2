//! The metrics port seen by a misbehaving client: one that connects and
//! sends nothing is closed after the 10 s header-read timeout, instead of
//! holding its connection for ever.

use std::time::{Duration, Instant};

use tokio::{io::AsyncReadExt, net::TcpStream};

use crate::harness::Gateway;

/// The fixed header-read timeout of the metrics endpoint (README).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_metrics_client_is_closed_after_ten_seconds() {
    let mut gateway = tokio::task::spawn_blocking(|| Gateway::sandbox(&[]))
        .await
        .expect("gateway");
    let serving = gateway
        .process
        .json_logs()
        .into_iter()
        .find(|v| v["message"] == crate::harness::SERVING_MESSAGE)
        .expect("serving line");
    let metrics_addr = serving["metrics_addr"]
        .as_str()
        .expect("metrics_addr in the serving line")
        .to_owned();
    let started = Instant::now();
    let mut silent = TcpStream::connect(&metrics_addr).await.expect("connect");
    let mut out = Vec::new();
    // Generous: the timeout plus a busy machine; without one, never.
    let read = tokio::time::timeout(HEADER_TIMEOUT * 3, silent.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "a client that sent nothing was still connected after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= HEADER_TIMEOUT - Duration::from_secs(1));
    // The endpoint still serves everyone else.
    let page = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(page.status(), 200);
    let _ = tokio::task::spawn_blocking(move || gateway.stop()).await;
}
