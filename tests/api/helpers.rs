//! Test harness: the real gateway started in-process on ephemeral loopback
//! ports, in front of the shared fake upstream ([`ktp_testkit::fake_upstream`]).

use std::{net::SocketAddr, time::Duration};

use ktp_gateway::{
    config::{
        Attempts, BaseUrl, Count, Count32, MessageBytes, PerSecond, PositiveDuration, Ratio,
        Secret, Settings, TokensFile, WaitDuration,
    },
    proto::{
        ExtractKtpRequest, ExtractKtpResponse, GetKtpResultRequest, GetKtpResultResponse,
        SubmitKtpRequest, SubmitKtpResponse, extract_ktp_request,
        ktp_service_client::KtpServiceClient, submit_ktp_request,
    },
    server,
};
use ktp_testkit::images::{self, ImageSource};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Request, Status, transport::Channel};

use ktp_testkit::fake_upstream::FakeUpstream;

/// Credentials the tests configure; asserted on the wire, never in output.
pub(crate) const APP_ID: &str = "test-app-id-7f3a";
pub(crate) const API_KEY: &str = "test-api-key-91c2";

/// What every test gateway starts from: an ephemeral loopback port, the
/// upstream at `base_url` with the test credentials, and callers
/// unauthenticated (the explicit opt-out; tests of auth set a tokens file,
/// which then applies).
pub(crate) fn test_settings(base_url: &str) -> Settings {
    let mut s = Settings::default();
    s.server.grpc_addr = "127.0.0.1:0".parse().expect("loopback address");
    s.upstream.base_url = base_url.parse().expect("fake upstream URL");
    s.upstream.app_id = Secret::new(APP_ID);
    s.upstream.api_key = Secret::new(API_KEY);
    s.auth.allow_unauthenticated = true;
    s
}

/// A duration setting of `ms` milliseconds.
pub(crate) fn millis(ms: u64) -> PositiveDuration {
    PositiveDuration::new(Duration::from_millis(ms)).expect("a positive duration")
}

/// A duration setting of `s` seconds.
pub(crate) fn secs(s: u64) -> PositiveDuration {
    millis(s * 1000)
}

/// A wait setting (`wait.max_wait`) of `ms` milliseconds.
pub(crate) fn wait_millis(ms: u64) -> WaitDuration {
    WaitDuration::new(Duration::from_millis(ms)).expect("a wait of at most 10 minutes")
}

/// A count setting.
pub(crate) fn count(n: usize) -> Count {
    Count::new(n).expect("a count from 1")
}

/// A count setting held as a `u32` (`server.max_concurrent_streams`,
/// `upstream.breaker.failure_threshold`).
pub(crate) fn count32(n: u32) -> Count32 {
    Count32::new(n).expect("a count from 1")
}

/// `upstream.retry.max_attempts`.
pub(crate) fn attempts(n: u32) -> Attempts {
    Attempts::new(n).expect("attempts from 1 to 10")
}

/// `submit.max_image_bytes`.
pub(crate) fn message_bytes(n: usize) -> MessageBytes {
    MessageBytes::new(n).expect("a message size from 1 to 64 MiB")
}

/// `upstream.retry.budget_ratio`.
pub(crate) fn ratio(r: f64) -> Ratio {
    Ratio::new(r).expect("a ratio from 0 to 1")
}

/// `upstream.retry.budget_min_per_sec`.
pub(crate) fn per_second(r: f64) -> PerSecond {
    PerSecond::new(r).expect("a rate from 0 to 1000000")
}

/// `upstream.base_url`.
pub(crate) fn base_url(url: &str) -> BaseUrl {
    url.parse().expect("a valid upstream base URL")
}

/// `auth.tokens_file` set to the file at `path`.
pub(crate) fn tokens_file(path: impl Into<std::path::PathBuf>) -> Option<TokensFile> {
    Some(TokensFile::load(path).expect("a valid tokens file"))
}

/// The gateway, running in-process against a fake upstream.
pub(crate) struct TestApp {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served.
    pub metrics_addr: SocketAddr,
    pub upstream: FakeUpstream,
    pub client: KtpServiceClient<Channel>,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<Result<(), server::ServeError>>>,
}

impl TestApp {
    /// Starts the gateway with the test defaults ([`test_settings`]) against
    /// a fresh fake upstream.
    pub(crate) async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the gateway with the test defaults changed by `configure`
    /// (typed: a renamed setting fails to compile, not at run time),
    /// against a fresh fake upstream.
    pub(crate) async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let upstream = FakeUpstream::start().await;
        Self::spawn_against(upstream, configure).await
    }

    /// As [`TestApp::spawn_with`], against `upstream`.
    pub(crate) async fn spawn_against(
        upstream: FakeUpstream,
        configure: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = test_settings(&upstream.base_url());
        configure(&mut settings);
        let settings = settings.checked().expect("settings");
        let listener = TcpListener::bind(*settings.server.grpc_addr)
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
    pub(crate) async fn call(
        &self,
        reference_id: &str,
    ) -> Result<tonic::Response<GetKtpResultResponse>, Status> {
        self.call_with(reference_id, |_| {}).await
    }

    pub(crate) async fn call_with(
        &self,
        reference_id: &str,
        customize: impl FnOnce(&mut Request<GetKtpResultRequest>),
    ) -> Result<tonic::Response<GetKtpResultResponse>, Status> {
        let mut request = Request::new(GetKtpResultRequest {
            read_mask: None,
            reference_id: reference_id.to_owned(),
            wait: false,
        });
        customize(&mut request);
        self.client.clone().get_ktp_result(request).await
    }

    /// Calls `SubmitKtp`.
    pub(crate) async fn submit(
        &self,
        request: SubmitKtpRequest,
    ) -> Result<tonic::Response<SubmitKtpResponse>, Status> {
        self.submit_with(request, |_| {}).await
    }

    /// Calls `SubmitKtp`, with the request's metadata or timeout changed.
    pub(crate) async fn submit_with(
        &self,
        request: SubmitKtpRequest,
        customize: impl FnOnce(&mut Request<SubmitKtpRequest>),
    ) -> Result<tonic::Response<SubmitKtpResponse>, Status> {
        let mut request = Request::new(request);
        customize(&mut request);
        self.client.clone().submit_ktp(request).await
    }

    /// Calls `ExtractKtp`.
    pub(crate) async fn extract(
        &self,
        request: ExtractKtpRequest,
    ) -> Result<tonic::Response<ExtractKtpResponse>, Status> {
        self.extract_with(request, |_| {}).await
    }

    /// Calls `ExtractKtp`, with the request's metadata or timeout changed.
    pub(crate) async fn extract_with(
        &self,
        request: ExtractKtpRequest,
        customize: impl FnOnce(&mut Request<ExtractKtpRequest>),
    ) -> Result<tonic::Response<ExtractKtpResponse>, Status> {
        let mut request = Request::new(request);
        customize(&mut request);
        self.client.clone().extract_ktp(request).await
    }

    /// Calls `GetKtpResult` with `wait`, and this timeout if any.
    pub(crate) async fn wait_for(
        &self,
        reference_id: &str,
        timeout: Option<Duration>,
    ) -> Result<tonic::Response<GetKtpResultResponse>, Status> {
        let mut request = Request::new(GetKtpResultRequest {
            read_mask: None,
            reference_id: reference_id.to_owned(),
            wait: true,
        });
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        self.client.clone().get_ktp_result(request).await
    }

    /// The metrics page, as Prometheus would scrape it.
    pub(crate) async fn scrape(&self) -> String {
        let response = reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("scrape");
        assert!(response.status().is_success());
        response.text().await.expect("metrics text")
    }

    /// Starts a call in the background, for calls that outlive the test's
    /// next steps (shutdown tests).
    pub(crate) fn spawn_call(
        &self,
        reference_id: &str,
    ) -> JoinHandle<Result<tonic::Response<GetKtpResultResponse>, Status>> {
        let mut client = self.client.clone();
        let request = GetKtpResultRequest {
            read_mask: None,
            reference_id: reference_id.to_owned(),
            wait: false,
        };
        tokio::spawn(async move { client.get_ktp_result(request).await })
    }

    /// Starts the shutdown sequence and waits for the server to stop cleanly,
    /// failing past `limit`; returns how long it took.
    pub(crate) async fn shut_down_within(
        &mut self,
        limit: std::time::Duration,
    ) -> std::time::Duration {
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
    pub(crate) fn begin_shutdown(&mut self) {
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

/// A `SubmitKtpRequest` for `reference_id` carrying `image`.
pub(crate) fn submit_request(image: ImageSource, reference_id: &str) -> SubmitKtpRequest {
    use submit_ktp_request::ImageSource as Source;
    SubmitKtpRequest {
        image_source: match image {
            ImageSource::None => None,
            ImageSource::File(b) => Some(Source::Image(b.into())),
            ImageSource::Url(u) => Some(Source::ImageUrl(u)),
        },
        validate_quality: false,
        reference_id: reference_id.to_owned(),
    }
}

/// An `ExtractKtpRequest` for `reference_id` carrying `image`.
pub(crate) fn extract_request(image: ImageSource, reference_id: &str) -> ExtractKtpRequest {
    use extract_ktp_request::ImageSource as Source;
    ExtractKtpRequest {
        read_mask: None,
        image_source: match image {
            ImageSource::None => None,
            ImageSource::File(b) => Some(Source::Image(b.into())),
            ImageSource::Url(u) => Some(Source::ImageUrl(u)),
        },
        validate_quality: false,
        reference_id: reference_id.to_owned(),
    }
}

/// Serves TLS with a fresh self-signed certificate for `localhost`, kept
/// in the returned folder (which must outlive the server's start).
pub(crate) fn self_signed_tls(s: &mut Settings) -> tempfile::TempDir {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("a self-signed certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    s.server.tls.cert_file = Some(cert);
    s.server.tls.key_file = Some(key);
    dir
}

/// A valid image (a 720×480 PNG), as a request carries it.
pub(crate) fn valid_image() -> ImageSource {
    ImageSource::File(images::valid())
}

/// A lazily-connecting channel to the gateway.
pub(crate) async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to gateway")
}

/// The documented sample success body, verbatim from the vendor page.
pub(crate) use ktp_testkit::card_holders::sample_success;

/// `GetKtpResultRequest` with `reference_id` as raw bytes: the same wire
/// format, but free to carry what a string field may not.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RawRequest {
    #[prost(bytes = "vec", tag = "1")]
    pub reference_id: Vec<u8>,
}

/// Rich-error view of a status, for terse assertions.
pub(crate) struct ErrorView {
    pub code: tonic::Code,
    pub message: String,
    pub details: tonic_types::ErrorDetails,
}

impl ErrorView {
    pub(crate) fn reason(&self) -> &str {
        self.details.error_info().map_or("", |i| i.reason.as_str())
    }
    pub(crate) fn domain(&self) -> &str {
        self.details.error_info().map_or("", |i| i.domain.as_str())
    }
    pub(crate) fn meta(&self, key: &str) -> Option<&str> {
        self.details
            .error_info()?
            .metadata
            .get(key)
            .map(String::as_str)
    }
    pub(crate) fn request_id(&self) -> &str {
        self.details
            .request_info()
            .map_or("", |i| i.request_id.as_str())
    }
    pub(crate) fn retry_delay(&self) -> Option<Duration> {
        self.details.retry_info()?.retry_delay
    }
}

/// Expects an error and decodes its details; also checks the invariants every
/// error must satisfy (ErrorInfo, RequestInfo, echoed request id).
pub(crate) fn expect_error<T: std::fmt::Debug>(result: Result<T, Status>) -> ErrorView {
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

/// A call a gRPC client could not make on purpose: its request headers and
/// the first `sent` bytes of a `message_len`-byte message, then nothing.
/// Holding it keeps the stream open (and stalled); [`Stalled::answer`]
/// waits for the gateway's status.
pub(crate) struct Stalled {
    answer: h2::client::ResponseFuture,
    _body: h2::SendStream<bytes::Bytes>,
}

impl Stalled {
    /// Opens the stream on `connection`, with `authorization` if given.
    pub(crate) async fn open(
        connection: &h2::client::SendRequest<bytes::Bytes>,
        method: &str,
        authorization: Option<&str>,
        message_len: u32,
        sent: usize,
    ) -> Self {
        let mut request = tonic::codegen::http::Request::post(format!("http://gateway{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(token) = authorization {
            request = request.header("authorization", token);
        }
        let request = request.body(()).expect("request head");
        let mut connection = connection.clone().ready().await.expect("stream allowed");
        let (answer, mut body) = connection
            .send_request(request, false)
            .expect("send the headers");
        let mut data = vec![0u8];
        data.extend_from_slice(&message_len.to_be_bytes());
        data.resize(5 + sent, 0x0a);
        body.send_data(data.into(), false)
            .expect("send part of the body");
        Self {
            answer,
            _body: body,
        }
    }

    /// The gateway's answer: its `grpc-status` (with details) from the
    /// headers of a trailers-only answer, or from the trailers.
    pub(crate) async fn answer(self) -> Status {
        let response = self.answer.await.expect("an answer");
        if let Some(status) = Status::from_header_map(response.headers()) {
            return status;
        }
        let mut body = response.into_body();
        while body.data().await.is_some() {}
        let trailers = body
            .trailers()
            .await
            .expect("trailers")
            .expect("trailers sent");
        Status::from_header_map(&trailers).expect("grpc-status")
    }
}

/// A raw HTTP/2 connection to the gateway, for [`Stalled`] streams.
pub(crate) async fn h2_connection(addr: SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Asserts that health answers SERVING for the whole server (`""`, liveness)
/// and for `ktp.v1.KtpService` (readiness), asked without any token.
pub(crate) async fn assert_serving(addr: SocketAddr) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut health = HealthClient::new(channel(addr).await);
    for service in ["", "ktp.v1.KtpService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e:?}"));
        assert_eq!(
            status.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}
