//! Helpers: start the real `ktp-gateway` binary with a clean environment,
//! learn its port from the "serving" log line, collect everything it prints,
//! and kill it when the test is over (even when the test panics).

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError, Sender},
    thread,
    time::{Duration, Instant},
};

use ktp_gateway::proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient};
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The binary under test, built by Cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_ktp-gateway");
/// How long the binary may take to print its "serving" line (generous: the
/// machine may be busy compiling other test targets).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process that is expected to end may take to do so.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for a log line that should already be on its way.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Message of the log line that announces the listening address.
pub const SERVING_MESSAGE: &str = "ktp-gateway serving";
/// Message of the one log line each call writes.
pub const CALL_FINISHED: &str = "call finished";

/// Env var names used by the tests.
pub mod env {
    pub const GRPC_ADDR: &str = "KTP_GATEWAY__SERVER__GRPC_ADDR";
    pub const METRICS_ADDR: &str = "KTP_GATEWAY__METRICS__ADDR";
    pub const SHUTDOWN_GRACE: &str = "KTP_GATEWAY__SERVER__SHUTDOWN_GRACE";
    pub const DRAIN_DELAY: &str = "KTP_GATEWAY__SERVER__DRAIN_DELAY";
    pub const WORKER_THREADS: &str = "KTP_GATEWAY__SERVER__WORKER_THREADS";
    pub const LOG_FORMAT: &str = "KTP_GATEWAY__LOG__FORMAT";
    pub const LOG_FILTER: &str = "KTP_GATEWAY__LOG__FILTER";
    pub const BASE_URL: &str = "KTP_GATEWAY__UPSTREAM__BASE_URL";
    pub const TIMEOUT: &str = "KTP_GATEWAY__UPSTREAM__TIMEOUT";
    pub const APP_ID: &str = "KTP_GATEWAY__UPSTREAM__APP_ID";
    pub const APP_ID_FILE: &str = "KTP_GATEWAY__UPSTREAM__APP_ID_FILE";
    pub const API_KEY: &str = "KTP_GATEWAY__UPSTREAM__API_KEY";
    pub const API_KEY_FILE: &str = "KTP_GATEWAY__UPSTREAM__API_KEY_FILE";
}

/// Personal values of the sandbox's fictional card holder: none may ever
/// reach the gateway's output.
pub const PERSONAL_VALUES: &[&str] = &[
    "SITI CONTOH",
    "3273016505900002",
    "25-05-1990",
    "JL. CONTOH NO. 1",
    "PEREMPUAN",
    "BANDUNG WETAN",
    "CITARUM",
    "KARYAWAN SWASTA",
];

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipe {
    Stdout,
    Stderr,
}

/// A command for the binary with a clean environment: only `PATH`, an
/// ephemeral loopback port, JSON logs at `info`, then `vars` (which may
/// override those). Inherited `KTP_GATEWAY__*` and `RUST_LOG` are gone.
pub fn gateway_command(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env(env::GRPC_ADDR, "127.0.0.1:0")
        .env(env::METRICS_ADDR, "127.0.0.1:0")
        .env(env::LOG_FORMAT, "json")
        .env(env::LOG_FILTER, "info")
        .envs(vars.iter().copied())
        .args(args);
    cmd
}

/// A child process whose stdout and stderr lines are read by background
/// threads and kept. Killed on drop if still running.
pub struct Process {
    name: String,
    child: Child,
    lines: Receiver<(Pipe, String)>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    pipes_closed: bool,
}

impl Process {
    /// Spawns `cmd` with piped output (and no stdin).
    pub fn spawn(cmd: Command) -> Self {
        Self::spawn_with_stdin(cmd, Stdio::null())
    }

    /// Spawns `cmd` reading `stdin`, with piped output.
    pub fn spawn_with_stdin(mut cmd: Command, stdin: Stdio) -> Self {
        let name = format!("{cmd:?}");
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name}: {e}"));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        forward_lines(stdout, Pipe::Stdout, tx.clone());
        forward_lines(stderr, Pipe::Stderr, tx);
        Self {
            name,
            child,
            lines: rx,
            stdout: Vec::new(),
            stderr: Vec::new(),
            pipes_closed: false,
        }
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines printed on stdout so far (as far as they have been collected).
    pub fn stdout(&self) -> &[String] {
        &self.stdout
    }

    /// Lines printed on stderr so far.
    pub fn stderr(&self) -> &[String] {
        &self.stderr
    }

    /// Everything printed so far, for assertion messages.
    pub fn output(&mut self) -> String {
        self.collect();
        self.render()
    }

    fn render(&self) -> String {
        format!(
            "--- stdout of {} ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }

    /// Collects lines already printed, without waiting.
    pub fn collect(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.keep(line);
        }
    }

    /// Waits up to `timeout` for one more line; false if none came.
    fn collect_one(&mut self, timeout: Duration) -> bool {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.keep(line);
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                self.pipes_closed = true;
                false
            }
        }
    }

    fn keep(&mut self, (pipe, line): (Pipe, String)) {
        match pipe {
            Pipe::Stdout => self.stdout.push(line),
            Pipe::Stderr => self.stderr.push(line),
        }
    }

    /// The stdout lines printed so far, parsed as JSON; panics on a line
    /// that is not JSON (the gateway is run with JSON logs).
    pub fn json_logs(&mut self) -> Vec<Value> {
        self.collect();
        let mut logs = Vec::new();
        for line in &self.stdout {
            match serde_json::from_str(line) {
                Ok(v) => logs.push(v),
                Err(e) => panic!("stdout line is not JSON ({e}): {line}\n{}", self.render()),
            }
        }
        logs
    }

    /// Whether the process has installed a handler for SIGTERM (Linux:
    /// the `SigCgt` mask in `/proc/PID/status`).
    pub fn catches_sigterm(&self) -> bool {
        const SIGTERM_BIT: u64 = 1 << (15 - 1);
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & SIGTERM_BIT != 0)
    }

    /// The first JSON log line matching `pred`, waiting up to `timeout` for
    /// it to be printed; panics with everything printed when it never comes.
    /// Blocks the thread: call it from a multi-threaded runtime, or when no
    /// other task needs to make progress.
    pub fn wait_for_log(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            let found = self.stdout[checked..]
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(&pred);
            if let Some(v) = found {
                return v;
            }
            checked = self.stdout.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (self.pipes_closed && !self.collect_one(Duration::ZERO)) {
                panic!(
                    "no log line {what} within {timeout:?} (or the output ended)\n{}",
                    self.output()
                );
            }
            self.collect_one(left.min(Duration::from_millis(100)));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, the way Kubernetes stops a pod.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit and for its output to
    /// end, then returns the exit status. Kills it and panics on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            self.collect();
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "process did not exit within {timeout:?}; killed it\n{}",
                        self.output()
                    );
                }
                Err(e) => panic!("cannot wait for the process: {e}\n{}", self.output()),
            }
        };
        // The pipes close with the process; wait a little for the last lines.
        let drain_deadline = Instant::now() + LOG_TIMEOUT;
        while !self.pipes_closed && Instant::now() < drain_deadline {
            self.collect_one(Duration::from_millis(100));
        }
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(pipe: impl Read + Send + 'static, which: Pipe, tx: Sender<(Pipe, String)>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send((which, line)).is_err() {
                break;
            }
        }
    });
}

/// How a process that was expected to end, ended.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Exited {
    /// Both pipes, for assertion messages and leak checks.
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n")
        )
    }
}

/// Runs `cmd` to completion (killed after [`EXIT_TIMEOUT`]).
pub fn run_to_exit(cmd: Command) -> Exited {
    let mut process = Process::spawn(cmd);
    let status = process.wait_exit(EXIT_TIMEOUT);
    Exited {
        status,
        stdout: std::mem::take(&mut process.stdout),
        stderr: std::mem::take(&mut process.stderr),
    }
}

/// Runs the gateway binary with `args` and `vars` (see [`gateway_command`])
/// to completion.
pub fn run_gateway_to_exit(args: &[&str], vars: &[(&str, &str)]) -> Exited {
    run_to_exit(gateway_command(args, vars))
}

/// A running gateway that has announced its address.
pub struct Gateway {
    pub process: Process,
    pub addr: SocketAddr,
}

impl Gateway {
    /// Starts the binary and waits for its "serving" line.
    pub fn start(args: &[&str], vars: &[(&str, &str)]) -> Self {
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
        // (`shutdown::sigterm_right_after_serving_is_handled` guards that);
        // checking it here keeps every other test from depending on it.
        let deadline = Instant::now() + LOG_TIMEOUT;
        while !process.catches_sigterm() {
            assert!(
                Instant::now() < deadline,
                "no SIGTERM handler {LOG_TIMEOUT:?} after the serving line\n{}",
                process.output()
            );
            thread::sleep(Duration::from_millis(5));
        }
        Self { process, addr }
    }

    /// Starts the binary with `--sandbox` and `vars`.
    pub fn sandbox(vars: &[(&str, &str)]) -> Self {
        Self::start(&["--sandbox"], vars)
    }

    /// `http://127.0.0.1:PORT`, for tonic.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A fresh, connected channel (its own TCP connection).
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(self.url())
            .expect("valid endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url()))
    }

    /// A KTP client on a fresh channel.
    pub async fn ktp(&self) -> KtpServiceClient<Channel> {
        KtpServiceClient::new(self.channel().await)
    }

    /// A health client on a fresh channel.
    pub async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    /// SIGTERM, then waits for the exit and the last output lines.
    pub fn stop(&mut self) -> ExitStatus {
        self.process.sigterm();
        self.process.wait_exit(EXIT_TIMEOUT)
    }

    /// The "call finished" line with this request id, waiting for it.
    pub fn call_log(&mut self, request_id: &str) -> Value {
        self.process
            .wait_for_log(&format!("for request {request_id}"), LOG_TIMEOUT, |v| {
                v["message"] == CALL_FINISHED && v["request_id"] == request_id
            })
    }
}

/// A `GetKtpResult` request, optionally with an `x-request-id`.
pub fn ktp_request(
    reference_id: &str,
    request_id: Option<&str>,
) -> tonic::Request<GetKtpResultRequest> {
    let mut request = tonic::Request::new(GetKtpResultRequest {
        reference_id: reference_id.to_owned(),
    });
    if let Some(id) = request_id {
        request
            .metadata_mut()
            .insert("x-request-id", id.parse().expect("ASCII request id"));
    }
    request
}

/// The health status of `service` ("" for the whole server).
pub async fn health_status(
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
pub fn assert_absent(lines: &[String], needle: &str, what: &str) {
    if let Some(line) = lines.iter().find(|l| l.contains(needle)) {
        panic!("{what} {needle:?} leaked into the output: {line}");
    }
}

/// A path for grpcurl: `$GRPCURL` (set by `scripts/test`), else `grpcurl`
/// on `PATH`. Panics, rather than skipping, when neither runs.
pub fn grpcurl() -> PathBuf {
    let candidate = std::env::var_os("GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("grpcurl"));
    let works = Command::new(&candidate)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        works,
        "grpcurl not runnable (tried {}): run the tests with `scripts/test`, \
         which installs grpcurl 1.8.6 and exports GRPCURL",
        candidate.display()
    );
    candidate
}
