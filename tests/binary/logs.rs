//! The log stream as a collector sees it, with a collector that stops
//! reading: the gateway keeps answering calls and health checks, drops the
//! lines that do not fit its queue, counts them in
//! `ktp_gateway_log_lines_dropped_total`, and says so in one WARN line once
//! stdout is read again.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{ChildStdout, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::harness::{
    EXIT_TIMEOUT, KillOnDrop, LOG_TIMEOUT, SERVING_MESSAGE, START_TIMEOUT, gateway_command,
    health_status, ktp_request,
};

/// How long one call may take before the test calls it stalled: generous,
/// the machine may be busy compiling; a stalled gateway never answers.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Calls made at once, to fill the pipe and the queue sooner.
const CONCURRENT: usize = 32;
/// Give up on seeing a drop after this many calls (a megabyte of queue is a
/// few thousand lines; each call writes one at `info` and more at `debug`).
const MAX_CALLS: usize = 40_000;

/// The addresses from the "serving" line, read off `stdout` line by line;
/// the reader is returned unread past that line.
fn serving_line(stdout: ChildStdout) -> (SocketAddr, String, BufReader<ChildStdout>) {
    let (tx, rx) = mpsc::channel();
    // A thread, so that a gateway that never serves fails the test in time.
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["message"] == SERVING_MESSAGE {
                let _ = tx.send((value, reader));
                return;
            }
        }
    });
    let (serving, reader) = rx
        .recv_timeout(START_TIMEOUT)
        .unwrap_or_else(|e| panic!("no serving line within {START_TIMEOUT:?}: {e}"));
    let addr = serving["addr"].as_str().and_then(|a| a.parse().ok());
    let metrics = serving["metrics_addr"].as_str().map(str::to_owned);
    match (addr, metrics) {
        (Some(addr), Some(metrics)) => (addr, metrics, reader),
        _ => panic!("serving line without addresses: {serving}"),
    }
}

async fn scrape_dropped(metrics_addr: &str) -> u64 {
    let page = tokio::time::timeout(
        CALL_TIMEOUT,
        reqwest::get(format!("http://{metrics_addr}/metrics")),
    )
    .await
    .expect("the metrics endpoint answers while stdout is stalled")
    .expect("scrape");
    let text = page.text().await.expect("scrape body");
    text.lines()
        .find_map(|l| l.strip_prefix("ktp_gateway_log_lines_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ktp_gateway_log_lines_dropped_total in\n{text}"))
}

/// One round of calls at once, and a health check: each must be answered.
async fn round(channel: &Channel, round: usize) {
    let calls = (0..CONCURRENT).map(|i| {
        let mut client =
            ktp_gateway::proto::ktp_service_client::KtpServiceClient::new(channel.clone());
        async move {
            let request = ktp_request("REFERENCE_ID_KTP", Some(&format!("stall-{round}-{i}")));
            tokio::time::timeout(CALL_TIMEOUT, client.get_ktp_result(request)).await
        }
    });
    for answer in futures_join_all(calls).await {
        let answer = answer.unwrap_or_else(|_| {
            panic!("round {round}: a call was not answered within {CALL_TIMEOUT:?}: logging stalls serving")
        });
        answer.unwrap_or_else(|e| panic!("round {round}: call failed: {e:?}"));
    }
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = tokio::time::timeout(CALL_TIMEOUT, health_status(&mut health, ""))
        .await
        .unwrap_or_else(|_| panic!("round {round}: health check not answered: logging stalls it"));
    assert_eq!(status.ok(), Some(ServingStatus::Serving), "round {round}");
}

/// `futures::future::join_all` without the crate: spawned tasks, joined.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.expect("call task"));
    }
    out
}

/// The gateway (`--sandbox`, `debug` logs) with its stdout read up to the
/// "serving" line and no further: a channel to it, its metrics address, and
/// the unread rest of its stdout.
async fn start_unread() -> (KillOnDrop, Channel, String, BufReader<ChildStdout>) {
    let mut cmd = gateway_command(&["--sandbox"], &[("KTP_GATEWAY__LOG__FILTER", "debug")]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Killed on drop, even when the test fails.
    let mut child = KillOnDrop(cmd.spawn().expect("spawn the gateway"));
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (addr, metrics_addr, reader) = tokio::task::spawn_blocking(move || serving_line(stdout))
        .await
        .expect("serving line");
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect");
    (child, channel, metrics_addr, reader)
}

/// Calls, each answered, until the gateway says it dropped log lines (the
/// pipe is full, then the queue): the calls made and the lines dropped.
async fn call_until_dropping(channel: &Channel, metrics_addr: &str) -> (usize, u64) {
    let started = Instant::now();
    let mut calls = 0;
    loop {
        assert!(
            calls < MAX_CALLS,
            "{calls} calls in {:?} and no line dropped",
            started.elapsed()
        );
        round(channel, calls / CONCURRENT).await;
        calls += CONCURRENT;
        if calls % (CONCURRENT * 20) == 0 {
            let dropped = scrape_dropped(metrics_addr).await;
            if dropped > 0 {
                return (calls, dropped);
            }
        }
    }
}

/// SIGTERM, then the exit status; fails the test after [`EXIT_TIMEOUT`].
async fn stop(child: &mut KillOnDrop) -> ExitStatus {
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait for the gateway") {
            return status;
        }
        assert!(Instant::now() < deadline, "no exit within {EXIT_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `v` is the WARN line that counts dropped lines.
fn is_drop_warning(v: &Value) -> bool {
    v["message"]
        .as_str()
        .is_some_and(|m| m.contains("log lines were dropped"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_nobody_reads_drops_lines_but_never_stalls_calls() {
    // From the serving line on, nobody reads stdout: the pipe fills, then
    // the queue.
    let (mut child, channel, metrics_addr, reader) = start_unread().await;
    let started = Instant::now();
    let (calls, dropped) = call_until_dropping(&channel, &metrics_addr).await;
    // Still answering with lines being dropped, not just at the edge.
    for i in 0..5 {
        round(&channel, 100_000 + i).await;
    }

    // Stdout is read again: the queue drains and one WARN says what was lost.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + LOG_TIMEOUT * 4;
    let warning = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no WARN about dropped log lines after stdout drained"));
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            panic!("stdout line is not JSON: {line}");
        };
        if is_drop_warning(&value) {
            break value;
        }
    };
    eprintln!(
        "{calls} calls in {:?}, {dropped} lines dropped; {warning}",
        started.elapsed()
    );
    assert_eq!(warning["level"], "WARN", "{warning}");
    let reported = warning["log_lines_dropped"].as_u64().unwrap_or(0);
    assert!(reported > 0, "{warning}");

    // Healthy again, and it still stops cleanly.
    round(&channel, 200_000).await;
    let counted = scrape_dropped(&metrics_addr).await;
    assert_eq!(stop(&mut child).await.code(), Some(0));

    // Every drop was said and counted: the WARN lines (one, unless the
    // queue filled again) add up to the metric.
    let later: u64 = rx
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(is_drop_warning)
        .map(|v| v["log_lines_dropped"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(reported + later, counted, "WARN lines against the metric");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdout_nobody_reads_does_not_hang_the_exit() {
    let (mut child, channel, metrics_addr, _unread) = start_unread().await;
    call_until_dropping(&channel, &metrics_addr).await;
    // The last lines cannot be written; the exit waits for them a moment only.
    assert_eq!(stop(&mut child).await.code(), Some(0));
}
