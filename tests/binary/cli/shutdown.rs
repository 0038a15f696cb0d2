//! SIGTERM, as Kubernetes sends it: health turns NOT_SERVING, the listener
//! closes, the in-flight call still gets its answer, and the process exits
//! 0; a call that outlives `server.shutdown_grace` is abandoned.

use std::{
    io::ErrorKind,
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use ktp_gateway::proto::GetKtpResultResponse;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_types::StatusExt;

use crate::harness::{
    EXIT_TIMEOUT, Gateway, KillOnDrop, Process, SERVING_MESSAGE, env, gateway_command,
    health_status, ktp_request,
};

/// Answers after 60 s in the sandbox: always still in flight at SIGTERM.
const SLOW: &str = "REFERENCE_ID_ERROR_SLOW";
/// Time between starting the slow call and sending SIGTERM.
const IN_FLIGHT_HEAD_START: Duration = Duration::from_millis(200);

type CallOutcome = (
    Result<tonic::Response<GetKtpResultResponse>, tonic::Status>,
    Duration,
);

/// A sandbox gateway whose upstream gives up after 1.5 s, with 5 s of grace.
fn draining_gateway() -> Gateway {
    draining_gateway_with(&[])
}

fn draining_gateway_with(extra: &[(&str, &str)]) -> Gateway {
    let mut vars = vec![(env::TIMEOUT, "1500ms"), (env::SHUTDOWN_GRACE, "5s")];
    vars.extend_from_slice(extra);
    Gateway::sandbox(&vars)
}

/// Starts the slow call on its own connection; the task yields its outcome
/// and how long it took.
async fn start_slow_call(gateway: &Gateway, request_id: &str) -> JoinHandle<CallOutcome> {
    let mut client = gateway.ktp().await;
    let request = ktp_request(SLOW, Some(request_id));
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let outcome = client.get_ktp_result(request).await;
        (outcome, started.elapsed())
    });
    tokio::time::sleep(IN_FLIGHT_HEAD_START).await;
    task
}

/// Polls `addr` with fresh TCP connections until one is refused; returns
/// whether that happened within `within`.
fn connect_refused_within(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
            #[expect(
                clippy::disallowed_methods,
                reason = "blocks one of the test runtime's two workers; the in-flight call runs on the other"
            )]
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_call_gets_its_answer_and_exit_code_is_zero() {
    in_flight_call_drains(draining_gateway()).await;
}

/// The same with the single-threaded runtime a 1-CPU pod gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_threaded_runtime_drains_the_same_way() {
    let gateway = draining_gateway_with(&[(env::WORKER_THREADS, "1")]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.process.pid()))
        .expect("/proc status");
    // The runtime's one thread, and the log thread that writes stdout.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", gateway.process.pid()))
        .expect("/proc tasks")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect::<Vec<_>>();
    assert!(
        status.lines().any(|l| l == "Threads:\t2")
            && tasks.iter().any(|comm| comm.trim() == "ktp-gateway-log"),
        "two threads expected, one of them the log thread: {tasks:?}\n{status}"
    );
    in_flight_call_drains(gateway).await;
}

async fn in_flight_call_drains(mut gateway: Gateway) {
    let call = start_slow_call(&gateway, "cli-drain-1").await;
    assert!(!call.is_finished(), "the slow call ended early");

    gateway.process.sigterm();
    let (outcome, took) = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the in-flight call must end")
        .expect("call task");
    let status = outcome.expect_err("the slow call times out upstream");
    assert_eq!(
        status.code(),
        Code::Unavailable,
        "the in-flight call must get its normal answer, not a transport error: {status:?}\n{}",
        gateway.process.output()
    );
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().map(|i| i.reason.as_str()),
        Some("UPSTREAM_TIMEOUT"),
        "{status:?}"
    );
    assert_eq!(
        details.request_info().map(|i| i.request_id.as_str()),
        Some("cli-drain-1")
    );
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
        "answered after {took:?}, expected about 1.5 s"
    );

    let exit = gateway.process.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.output());
    let log = gateway.call_log("cli-drain-1");
    assert_eq!(log["grpc_code"], "UNAVAILABLE", "{log}");
    assert_eq!(log["reason"], "UPSTREAM_TIMEOUT", "{log}");
    let logs = gateway.process.json_logs();
    let messages: Vec<&str> = logs.iter().filter_map(|v| v["message"].as_str()).collect();
    for expected in ["received SIGTERM, starting shutdown", "shutdown complete"] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} log line\n{}",
            gateway.process.output()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_not_serving_once_shutdown_begins() {
    let mut gateway = draining_gateway();
    // A checker with a long-lived connection (a load balancer, a mesh
    // sidecar) must learn that the server is going away: at least one Check
    // on its already-open connection has to answer NOT_SERVING.
    // Opened and used before SIGTERM: the probe's connection already exists.
    let mut health = gateway.health().await;
    assert_eq!(
        health_status(&mut health, "ktp.v1.KtpService").await.ok(),
        Some(ServingStatus::Serving)
    );
    let call = start_slow_call(&gateway, "cli-health-1").await;

    gateway.process.sigterm();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut not_serving = false;
    while Instant::now() < deadline && gateway.process.is_running() {
        let check = tokio::time::timeout(
            Duration::from_millis(300),
            health_status(&mut health, "ktp.v1.KtpService"),
        )
        .await;
        match check {
            Ok(Ok(ServingStatus::NotServing)) => {
                not_serving = true;
                break;
            }
            Ok(Ok(other)) => seen.push(format!("{other:?}")),
            // A GOAWAY or refused reconnect is acceptable; keep polling.
            Ok(Err(status)) => seen.push(format!("error {:?}", status.code())),
            Err(_) => seen.push("timeout".to_owned()),
        }
    }
    seen.dedup();
    assert!(
        not_serving,
        "no health Check observed NOT_SERVING between SIGTERM and exit; saw {seen:?}\n{}",
        gateway.process.output()
    );
    let _ = call.await;
    assert_eq!(
        gateway.process.wait_exit(EXIT_TIMEOUT).code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_closes_while_the_in_flight_call_drains() {
    let mut gateway = draining_gateway();
    let call = start_slow_call(&gateway, "cli-listener-1").await;
    assert!(
        TcpStream::connect(gateway.addr).is_ok(),
        "listening before SIGTERM"
    );

    gateway.process.sigterm();
    let sigterm_at = Instant::now();
    let refused = connect_refused_within(gateway.addr, Duration::from_secs(3));
    let still_draining = gateway.process.is_running() && !call.is_finished();
    assert!(
        refused,
        "new connections were still accepted 3 s after SIGTERM\n{}",
        gateway.process.output()
    );
    assert!(
        still_draining,
        "connections were refused only once the process had exited (after {:?}), \
         not while the in-flight call was draining: the listener stays open during the drain\n{}",
        sigterm_at.elapsed(),
        gateway.process.output()
    );
    let (outcome, _) = call.await.expect("call task");
    assert_eq!(
        outcome.expect_err("upstream timeout").code(),
        Code::Unavailable
    );
    assert_eq!(
        gateway.process.wait_exit(EXIT_TIMEOUT).code(),
        Some(0),
        "{}",
        gateway.process.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_call_is_abandoned_after_the_grace_period() {
    let mut gateway = Gateway::sandbox(&[
        (env::TIMEOUT, "30s"),
        (env::SHUTDOWN_GRACE, "1s"),
        (env::DRAIN_DELAY, "200ms"),
    ]);
    let call = start_slow_call(&gateway, "cli-stuck-1").await;

    gateway.process.sigterm();
    let sigterm_at = Instant::now();
    let exit = gateway.process.wait_exit(Duration::from_secs(10));
    let took = sigterm_at.elapsed();
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.output());
    assert!(
        took >= Duration::from_millis(900),
        "exited {took:?} after SIGTERM: the grace period was not given to the call"
    );
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        gateway
            .process
            .json_logs()
            .iter()
            .any(|v| v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("grace period over"))),
        "no \"grace period over\" warning\n{}",
        gateway.process.output()
    );
    // The abandoned caller learns promptly that its call failed.
    let (outcome, _) = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the abandoned call must end when the process exits")
        .expect("call task");
    assert!(outcome.is_err(), "a stuck call cannot have succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_watch_sees_not_serving_then_its_stream_ends() {
    let mut gateway = Gateway::sandbox(&[(env::SHUTDOWN_GRACE, "5s")]);
    let mut health = gateway.health().await;
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "ktp.v1.KtpService".to_owned(),
        })
        .await
        .expect("Watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("first status")
        .expect("a status");
    assert_eq!(first.status(), ServingStatus::Serving);

    gateway.process.sigterm();
    let sigterm_at = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(3), watch.message())
        .await
        .expect("a status change within 3 s of SIGTERM")
        .expect("the watch stream stays open while draining")
        .expect("a status");
    assert_eq!(next.status(), ServingStatus::NotServing);
    // When the listener closes (after the 1 s drain delay) the gateway ends
    // the stream itself, so the watcher cannot hold the drain.
    let end = tokio::time::timeout(Duration::from_secs(3), watch.message())
        .await
        .expect("the watch stream ends once the listener closes")
        .expect("it ends cleanly, with OK");
    assert!(end.is_none(), "no status after NOT_SERVING: {end:?}");
    let exit = gateway.process.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit.code(), Some(0), "{}", gateway.process.output());
    assert!(
        sigterm_at.elapsed() < Duration::from_secs(4),
        "took {:?} to exit after the last call ended",
        sigterm_at.elapsed()
    );
    let logs = gateway.process.json_logs();
    assert!(
        logs.iter().any(|v| v["message"] == "shutdown complete"),
        "{}",
        gateway.process.output()
    );
}

#[test]
fn sigterm_right_after_serving_is_handled() {
    // Kubernetes may send SIGTERM at any moment after the pod reports ready.
    // The window is short, so a shell reads the gateway's stdout itself and
    // sends SIGTERM (built-in `kill`: starting /bin/kill from here takes
    // long enough to miss the window) the moment the serving line arrives,
    // echoing everything; and this is tried several times.
    const WATCHER: &str = r#"
        while IFS= read -r line; do
            printf '%s\n' "$line"
            case "$line" in *'"ktp-gateway serving"'*) kill -TERM "$0"; break;; esac
        done
        cat"#;
    for attempt in 1..=100 {
        // No drain delay: a hundred starts must not take a hundred seconds.
        let mut cmd = gateway_command(&["--sandbox"], &[(env::DRAIN_DELAY, "0s")]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut gateway = KillOnDrop(cmd.spawn().expect("spawn the gateway"));
        let gateway_stdout = gateway.0.stdout.take().expect("piped stdout");
        let mut watcher = Command::new("sh");
        watcher.args(["-c", WATCHER, &gateway.0.id().to_string()]);
        let mut watcher = Process::spawn_with_stdin(watcher, gateway_stdout.into());
        // The watcher's `cat` ends when the gateway closes its stdout: exits.
        watcher.wait_exit(EXIT_TIMEOUT);
        let status = gateway.0.wait().expect("wait for the gateway");
        let output = watcher.output();
        assert!(output.contains(SERVING_MESSAGE), "never served:\n{output}");
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: SIGTERM sent right after the serving line ended the process \
             with {status}: the SIGTERM handler is installed only after \"serving\" is logged\n{output}"
        );
        assert!(
            output.contains("received SIGTERM, starting shutdown"),
            "attempt {attempt}:\n{output}"
        );
    }
}
