//! The gateway binary under test, seen from outside: calls through a tonic
//! client, its resident memory and its upstream sockets from `/proc`, and
//! everything it printed.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use ktp_gateway::proto::{
    GetKtpResultRequest, GetKtpResultResponse, SubmitKtpRequest, SubmitKtpResponse,
    ktp_service_client::KtpServiceClient, submit_ktp_request,
};
use tonic::{Status, transport::Channel};

use ktp_testkit::fake_upstream::FakeUpstream;

use crate::harness::{Gateway, env};

/// Credentials the gateway is given; they must reach the upstream and
/// nothing else.
pub(super) const APP_ID: &str = "faults-app-id-5d1e9b77";
pub(super) const API_KEY: &str = "faults-api-key-c0ffee4217";

/// `TCP_ESTABLISHED` as `/proc/net/tcp` writes it.
const ESTABLISHED: &str = "01";

/// Upper bound for any one call: far above every scenario's own bound, so a
/// hung gateway fails the test instead of hanging it.
const CALL_LIMIT: Duration = Duration::from_secs(15);

/// The running binary and a client connected to it.
pub(super) struct Subject {
    pub gateway: Gateway,
    client: KtpServiceClient<Channel>,
    upstream_port: u16,
}

impl Subject {
    /// Starts the binary against `upstream`, credentials in the environment,
    /// logs filtered by `log_filter`, plus `extra` settings.
    pub(super) async fn start(
        upstream: &FakeUpstream,
        log_filter: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let base_url = upstream.base_url();
        let mut vars = vec![
            (env::BASE_URL, base_url.as_str()),
            (env::APP_ID, APP_ID),
            (env::API_KEY, API_KEY),
            (env::LOG_FILTER, log_filter),
            // The single-threaded runtime a 1-CPU pod gets; the other suites
            // run the multi-threaded one.
            (env::WORKER_THREADS, "1"),
        ];
        vars.extend_from_slice(extra);
        #[expect(
            clippy::disallowed_methods,
            reason = "a multi-thread test runtime, around the synchronous process harness"
        )]
        let gateway = tokio::task::block_in_place(|| Gateway::start(&[], &vars));
        let client = gateway.ktp().await;
        Self {
            gateway,
            client,
            upstream_port: upstream.addr.port(),
        }
    }

    /// One `GetKtpResult` call; see [`Caller::call`].
    pub(super) async fn call(
        &self,
        reference_id: &str,
        deadline: Option<Duration>,
    ) -> (Result<GetKtpResultResponse, Status>, Duration) {
        self.caller().call(reference_id, deadline).await
    }

    /// One `SubmitKtp` call; see [`Caller::submit`].
    pub(super) async fn submit(
        &self,
        reference_id: &str,
        image: &[u8],
        deadline: Option<Duration>,
    ) -> (Result<SubmitKtpResponse, Status>, Duration) {
        self.caller().submit(reference_id, image, deadline).await
    }

    /// A handle for calls from other tasks.
    pub(super) fn caller(&self) -> Caller {
        Caller(self.client.clone())
    }

    pub(super) fn pid(&self) -> u32 {
        self.gateway.process.pid()
    }

    /// Resident memory now (`VmRSS`), in bytes.
    pub(super) fn rss(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:") * 1024
    }

    /// The TCP states (hex, as in `/proc/net/tcp`: `01` established, `08`
    /// close-wait, …) of the sockets the gateway process holds open towards
    /// the upstream's port. Only sockets whose inode is one of the process's
    /// file descriptors count, so other processes and the fake upstream's own
    /// ends never do.
    pub(super) fn upstream_sockets(&self) -> Vec<String> {
        let pid = self.pid();
        let owned: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                    .filter_map(|target| {
                        let t = target.to_string_lossy().into_owned();
                        t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut states = Vec::new();
        for table in ["tcp", "tcp6"] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(remote), Some(state), Some(inode)) =
                    (fields.get(2), fields.get(3), fields.get(9))
                else {
                    continue;
                };
                let remote_port = remote
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
                let inode: u64 = inode.parse().unwrap_or(0);
                if remote_port == Some(self.upstream_port) && owned.contains(&inode) {
                    states.push((*state).to_owned());
                }
            }
        }
        states
    }

    /// Waits up to `within` for the gateway to hold at most `limit` upstream
    /// sockets, all of them established (a socket in any other state, e.g.
    /// `08` close-wait, is one the upstream closed and the gateway did not);
    /// returns the last states seen if that never happened.
    pub(super) async fn settle_upstream_sockets(
        &self,
        limit: usize,
        within: Duration,
    ) -> Result<usize, Vec<String>> {
        let deadline = Instant::now() + within;
        loop {
            let sockets = self.upstream_sockets();
            if sockets.len() <= limit && sockets.iter().all(|s| s == ESTABLISHED) {
                return Ok(sockets.len());
            }
            if Instant::now() >= deadline {
                return Err(sockets);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process is still running and nothing it printed reports a panic
    /// (a panicking task prints "panicked" on stderr; a panic hook or
    /// tracing would show it on stdout).
    pub(super) fn assert_alive_without_panic(&mut self, after: &str) {
        let running = self.gateway.process.is_running();
        let lines = self.output_lines();
        let panicked = lines.iter().find(|l| l.contains("panicked"));
        assert!(
            running && panicked.is_none(),
            "after {after}: running={running}, panic line: {panicked:?}\n{}",
            self.gateway.process.output()
        );
    }

    /// Every line printed so far, stdout then stderr.
    pub(super) fn output_lines(&mut self) -> Vec<String> {
        self.gateway.process.collect();
        let process = &self.gateway.process;
        process
            .stdout()
            .iter()
            .chain(process.stderr())
            .cloned()
            .collect()
    }
}

/// A client of the gateway, cheap to clone (one shared HTTP/2 connection).
#[derive(Clone)]
pub(super) struct Caller(KtpServiceClient<Channel>);

impl Caller {
    /// One `GetKtpResult` call, with a `grpc-timeout` when `deadline` is set;
    /// returns how long it took.
    pub(super) async fn call(
        &self,
        reference_id: &str,
        deadline: Option<Duration>,
    ) -> (Result<GetKtpResultResponse, Status>, Duration) {
        let mut request = tonic::Request::new(GetKtpResultRequest {
            read_mask: None,
            reference_id: reference_id.to_owned(),
            wait: false,
        });
        if let Some(d) = deadline {
            request.set_timeout(d);
        }
        let started = Instant::now();
        let mut client = self.0.clone();
        let result = tokio::time::timeout(CALL_LIMIT, client.get_ktp_result(request))
            .await
            .unwrap_or_else(|_| panic!("{reference_id}: no answer within {CALL_LIMIT:?}"));
        (result.map(tonic::Response::into_inner), started.elapsed())
    }
}

impl Caller {
    /// One `SubmitKtp` call of `image`, with a `grpc-timeout` when
    /// `deadline` is set; returns how long it took.
    pub(super) async fn submit(
        &self,
        reference_id: &str,
        image: &[u8],
        deadline: Option<Duration>,
    ) -> (Result<SubmitKtpResponse, Status>, Duration) {
        let mut request = tonic::Request::new(SubmitKtpRequest {
            image_source: Some(submit_ktp_request::ImageSource::Image(
                image.to_vec().into(),
            )),
            validate_quality: false,
            reference_id: reference_id.to_owned(),
        });
        if let Some(d) = deadline {
            request.set_timeout(d);
        }
        let started = Instant::now();
        let mut client = self.0.clone();
        let result = tokio::time::timeout(CALL_LIMIT, client.submit_ktp(request))
            .await
            .unwrap_or_else(|_| panic!("{reference_id}: no answer within {CALL_LIMIT:?}"));
        (result.map(tonic::Response::into_inner), started.elapsed())
    }
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmRSS:` or `VmHWM:`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Polls `done` every 20 ms for up to `within`; true once it holds.
pub(super) async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
