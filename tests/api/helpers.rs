//! Test harness: a scriptable fake upstream speaking HTTP/1.1 over raw TCP
//! (so it can also misbehave: hang, reset, send garbage), and the real gateway
//! started in-process on ephemeral loopback ports.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use ktp_gateway::{
    config::{Settings, Sources},
    proto::{GetKtpResultRequest, GetKtpResultResponse, ktp_service_client::KtpServiceClient},
    server,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};
use tonic::{Request, Status, transport::Channel};

/// Credentials the tests configure; asserted on the wire, never in output.
pub const APP_ID: &str = "test-app-id-7f3a";
pub const API_KEY: &str = "test-api-key-91c2";

/// What the fake upstream does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A JSON answer with this status.
    Json(u16, Value),
    /// Full control over status line, headers and body bytes.
    Raw {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Answers after a pause.
    Delayed(Duration, Box<Reply>),
    /// Reads the request, then never answers (until the client goes away).
    Hang,
    /// Sends headers announcing a long body, part of it, then closes.
    CutMidBody,
    /// Closes the connection without answering.
    Close,
    /// Each request gets the next reply of the list, round and round (a
    /// flapping upstream).
    Cycle(Arc<Vec<Reply>>, Arc<AtomicUsize>),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::Json(status, body)
    }
    pub fn cycle(replies: Vec<Reply>) -> Self {
        Self::Cycle(Arc::new(replies), Arc::new(AtomicUsize::new(0)))
    }

    pub fn with_headers(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self::Raw {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
        }
    }
}

/// One request as the fake upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    by_reference: Mutex<HashMap<String, Reply>>,
    default: Mutex<Option<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    hung_and_abandoned: AtomicUsize,
    /// Requests being answered right now, and the most seen at once.
    busy: AtomicUsize,
    max_busy: AtomicUsize,
}

/// A fake upstream on 127.0.0.1:0.
#[derive(Clone)]
pub struct FakeUpstream {
    pub addr: SocketAddr,
    state: Arc<State>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake upstream");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                task_state.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve_connection(stream, task_state.clone()));
            }
        });
        Self {
            addr,
            state,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer requests for `reference_id` with `reply`.
    pub fn on(&self, reference_id: &str, reply: Reply) -> &Self {
        self.state
            .by_reference
            .lock()
            .unwrap()
            .insert(reference_id.to_owned(), reply);
        self
    }

    /// Answer every request without a specific script with `reply`.
    pub fn otherwise(&self, reply: Reply) -> &Self {
        *self.state.default.lock().unwrap() = Some(reply);
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The most requests the fake upstream was answering at the same time.
    pub fn max_concurrent_requests(&self) -> usize {
        self.state.max_busy.load(Ordering::SeqCst)
    }

    /// Hung requests whose client went away (the gateway dropped them).
    pub fn abandoned(&self) -> usize {
        self.state.hung_and_abandoned.load(Ordering::SeqCst)
    }
}

fn reply_for(state: &State, req: &Recorded) -> Reply {
    let id = req
        .query_value("reference_id")
        .map(str::to_owned)
        .or_else(|| {
            let v: Value = serde_json::from_slice(&req.body).ok()?;
            v.get("reference_id")?.as_str().map(str::to_owned)
        });
    id.and_then(|id| state.by_reference.lock().unwrap().get(&id).cloned())
        .or_else(|| state.default.lock().unwrap().clone())
        .unwrap_or_else(|| {
            Reply::json(
                404,
                serde_json::json!({"message": "Reference ID not found",
                                   "error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
            )
        })
}

struct BusyGuard<'a>(&'a AtomicUsize);
impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves keep-alive HTTP/1.1 requests on one connection until it closes.
async fn serve_connection(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        state.requests.lock().unwrap().push(req.clone());
        let busy = state.busy.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_busy.fetch_max(busy, Ordering::SeqCst);
        let _done = BusyGuard(&state.busy);
        let mut reply = reply_for(&state, &req);
        let reply = loop {
            reply = match reply {
                Reply::Delayed(pause, next) => {
                    tokio::time::sleep(pause).await;
                    *next
                }
                Reply::Cycle(replies, next) => {
                    let i = next.fetch_add(1, Ordering::SeqCst) % replies.len();
                    replies[i].clone()
                }
                other => break other,
            };
        };
        let (status, headers, body) = match reply {
            Reply::Json(status, v) => (
                status,
                vec![("Content-Type".to_owned(), "application/json".to_owned())],
                v.to_string().into_bytes(),
            ),
            Reply::Raw {
                status,
                headers,
                body,
            } => (status, headers, body),
            Reply::Hang => {
                // Wait for the peer to close; count it as abandoned.
                let mut sink = [0u8; 1024];
                loop {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => {
                            state.hung_and_abandoned.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(_) => {}
                    }
                }
            }
            Reply::CutMidBody => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"data\": {\"nik\": ";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.flush().await;
                return;
            }
            Reply::Close => return,
            Reply::Delayed(..) | Reply::Cycle(..) => unreachable!("resolved above"),
        };
        let has_length = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            || headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
        let mut head = format!("HTTP/1.1 {status} X\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_length {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(&body).await.is_err()
        {
            return;
        }
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[header_end..header_end + length].to_vec();
    buf.drain(..header_end + length);
    let url = reqwest::Url::parse(&format!("http://x{target}")).ok()?;
    Some(Recorded {
        method,
        path: url.path().to_owned(),
        query: url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        headers,
        body,
    })
}

/// The gateway, running in-process against a fake upstream.
pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served.
    pub metrics_addr: SocketAddr,
    pub upstream: FakeUpstream,
    pub client: KtpServiceClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<Result<(), server::ServeError>>>,
}

impl TestApp {
    /// Starts the gateway with default settings plus `env` overrides
    /// (`KTP_GATEWAY__…` names, as an operator would set them).
    pub async fn spawn_with(env: &[(&str, &str)]) -> Self {
        let upstream = FakeUpstream::start().await;
        Self::spawn_against(upstream, env).await
    }

    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_against(upstream: FakeUpstream, env: &[(&str, &str)]) -> Self {
        let mut vars: HashMap<String, String> = [
            ("KTP_GATEWAY__SERVER__GRPC_ADDR", "127.0.0.1:0".to_owned()),
            ("KTP_GATEWAY__UPSTREAM__BASE_URL", upstream.base_url()),
            ("KTP_GATEWAY__UPSTREAM__APP_ID", APP_ID.to_owned()),
            ("KTP_GATEWAY__UPSTREAM__API_KEY", API_KEY.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in env {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let settings = Settings::load(Sources {
            env: Some(vars),
            ..Default::default()
        })
        .expect("settings");
        let listener = TcpListener::bind(settings.server.grpc_addr)
            .await
            .expect("bind gateway");
        let addr = listener.local_addr().expect("addr");
        let metrics_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind metrics");
        let metrics_addr = metrics_listener.local_addr().expect("metrics addr");
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(server::run_with(
            settings,
            listener,
            Some(metrics_listener),
            async {
                let _ = rx.await;
            },
        ));
        // Lazy: a TLS-only gateway must not fail the spawn of a plaintext client.
        let client = KtpServiceClient::new(
            Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect_lazy(),
        );
        Self {
            addr,
            metrics_addr,
            upstream,
            client,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Calls `GetKtpResult` with optional metadata and timeout.
    pub async fn call(
        &self,
        reference_id: &str,
    ) -> Result<tonic::Response<GetKtpResultResponse>, Status> {
        self.call_with(reference_id, |_| {}).await
    }

    pub async fn call_with(
        &self,
        reference_id: &str,
        customize: impl FnOnce(&mut Request<GetKtpResultRequest>),
    ) -> Result<tonic::Response<GetKtpResultResponse>, Status> {
        let mut request = Request::new(GetKtpResultRequest {
            reference_id: reference_id.to_owned(),
        });
        customize(&mut request);
        self.client.clone().get_ktp_result(request).await
    }

    /// The metrics page, as Prometheus would scrape it.
    pub async fn scrape(&self) -> String {
        let response = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("scrape");
        assert!(response.status().is_success());
        response.text().await.expect("metrics text")
    }

    /// Starts a call in the background, for calls that outlive the test's
    /// next steps (shutdown tests).
    pub fn spawn_call(
        &self,
        reference_id: &str,
    ) -> JoinHandle<Result<tonic::Response<GetKtpResultResponse>, Status>> {
        let mut client = self.client.clone();
        let request = GetKtpResultRequest {
            reference_id: reference_id.to_owned(),
        };
        tokio::spawn(async move { client.get_ktp_result(request).await })
    }

    /// Starts the shutdown sequence and waits for the server to stop cleanly,
    /// failing past `limit`; returns how long it took.
    pub async fn shut_down_within(&mut self, limit: std::time::Duration) -> std::time::Duration {
        let started = std::time::Instant::now();
        self.begin_shutdown();
        let handle = self.handle.take().expect("server running");
        tokio::time::timeout(limit, handle)
            .await
            .expect("the grace period bounds shutdown")
            .expect("server task")
            .expect("clean exit");
        started.elapsed()
    }

    /// Starts the shutdown sequence (like SIGTERM).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

/// A lazily-connecting channel to the gateway.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to gateway")
}

/// The documented sample success body, verbatim from the vendor page.
pub fn sample_success() -> Value {
    serde_json::json!({ "message": "success extract ktp data", "data": { "nik": "3506042602660001", "city": "KABUPATEN KEDIRI", "rt_rw": "002/003", "state": "PROVINSI JAWA TIMUR", "gender": "LAKI-LAKI", "address": "JL.AYYA DSN PURWOKERTO", "district": "NGADILUWIH", "religion": "ISLAM", "full_name": "SULISTYONO", "blood_type": "-", "occupation": "GURU", "nationality": "WNI", "date_of_birth": "26-02-1966", "marital_status": "KAWIN", "place_of_birth": "KEDIRI", "administrative_village": "PURWOKERTO", "image_quality": { "blur": false, "dark": false, "grayscale": false, "flashlight": false } } })
}

/// Rich-error view of a status, for terse assertions.
pub struct ErrorView {
    pub code: tonic::Code,
    pub message: String,
    pub details: tonic_types::ErrorDetails,
}

impl ErrorView {
    pub fn reason(&self) -> &str {
        self.details.error_info().map_or("", |i| i.reason.as_str())
    }
    pub fn domain(&self) -> &str {
        self.details.error_info().map_or("", |i| i.domain.as_str())
    }
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.details
            .error_info()?
            .metadata
            .get(key)
            .map(String::as_str)
    }
    pub fn request_id(&self) -> &str {
        self.details
            .request_info()
            .map_or("", |i| i.request_id.as_str())
    }
    pub fn retry_delay(&self) -> Option<Duration> {
        self.details.retry_info()?.retry_delay
    }
}

/// Expects an error and decodes its details; also checks the invariants every
/// error must satisfy (ErrorInfo, RequestInfo, echoed request id).
pub fn expect_error<T: std::fmt::Debug>(result: Result<T, Status>) -> ErrorView {
    let status = match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s,
    };
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    assert!(details.error_info().is_some(), "no ErrorInfo in {status:?}");
    let request_id = details
        .request_info()
        .map(|r| r.request_id.clone())
        .unwrap_or_default();
    assert!(!request_id.is_empty(), "no RequestInfo in {status:?}");
    let echoed = status
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    assert_eq!(echoed, Some(request_id.as_str()), "x-request-id metadata");
    assert!(!status.message().is_empty(), "human-readable message");
    for secret in [APP_ID, API_KEY] {
        assert!(!status.message().contains(secret));
    }
    ErrorView {
        code: status.code(),
        message: status.message().to_owned(),
        details,
    }
}
