//! Every example of the error table as data ([`ktp_testkit::error_table`])
//! through the real server, on the RPC it names: the HTTP answers played by
//! the fake upstream on the upstream call they answer (the result call or
//! the submit call), everything else provoked the way its [`Provoke`]
//! variant says. Each
//! example gets a gateway of its own (a fresh breaker and retry budget) and
//! is checked for code, reason, domain, metadata, detail, the request id in
//! `RequestInfo` and `x-request-id`, and the upstream requests it took.
//!
//! `rows.rs` keeps its hand-written test per row; this file is what grows by
//! itself when the table gets an entry.

use std::{net::SocketAddr, time::Duration};

use prost_types::FieldMask;

use ktp_gateway::config::Settings;
use ktp_gateway::proto::{
    ExtractKtpRequest, GetKtpResultRequest, GetKtpResultResponse,
    ktp_service_client::KtpServiceClient,
};
use ktp_testkit::{
    check,
    error_table::{Delay, Detail, Example, ImageCase, Provoke, Rpc, TABLE, Trigger},
    fake_upstream::Reply,
    images::{self, ImageSource},
};
use tonic::{Code, Request, Status, codegen::http::uri::PathAndQuery, transport::Channel};

use crate::helpers::{
    API_KEY, APP_ID, RawRequest, Stalled, TestApp, attempts, base_url, channel, count, count32,
    extract_request, h2_connection, millis, sample_success, secs, submit_request, tokens_file,
    wait_millis,
};
use crate::wire::{self, AnyRequest, Wire};

/// The reference id of each example's call.
const ID: &str = "TABLE-REF-1";
/// The gateway's `upstream.timeout` made short, for examples that need it.
fn short_timeout(s: &mut Settings) {
    s.upstream.timeout = millis(300);
}
/// How late a "slow" upstream answers: far beyond every bound used here.
const SLOW: Duration = Duration::from_secs(5);
/// The caller's deadline when it must run out first: long enough that the
/// gateway's answer (50 ms before it) beats the client's own timer even on
/// a starved CPU.
const CALLER_DEADLINE: Duration = Duration::from_secs(1);
/// `upstream.breaker.cooldown`'s default: an open circuit's `RetryInfo` is
/// at most this.
const COOL_DOWN: Duration = Duration::from_secs(10);
/// `submit.max_image_bytes`'s default.
const MAX_IMAGE_BYTES: usize = 5_000_000;
/// A wait that ends after its first poll: `wait.max_wait` shorter than
/// `wait.poll_interval`.
fn one_poll(s: &mut Settings) {
    s.wait.max_wait = wait_millis(300);
    s.wait.poll_interval = secs(2);
}

/// `GetKtpResultRequest`'s field 1 with the wrong wire type (fixed64
/// instead of length-delimited).
#[derive(Clone, PartialEq, prost::Message)]
struct WrongWireType {
    #[prost(fixed64, tag = "1")]
    reference_id: u64,
}

/// A call's answer, whatever its RPC: only success or the status matters.
type CallResult = Result<(), Status>;

/// One call of an example: its RPC and request, as the example says.
#[derive(Clone)]
struct Call {
    rpc: Rpc,
    reference_id: String,
    image: ImageSource,
    wait: bool,
    timeout: Option<Duration>,
    metadata: Vec<(&'static str, &'static str)>,
    read_mask: &'static [&'static str],
    wire: Wire,
}

impl Call {
    fn new(rpc: Rpc, reference_id: &str) -> Self {
        Self {
            rpc,
            reference_id: reference_id.to_owned(),
            image: ImageSource::File(images::valid()),
            wait: false,
            timeout: None,
            metadata: Vec::new(),
            read_mask: &[],
            wire: Wire::Grpc,
        }
    }

    /// The request the example's call sends.
    fn request(&self) -> AnyRequest {
        let read_mask = (!self.read_mask.is_empty()).then(|| FieldMask {
            paths: self.read_mask.iter().map(|p| (*p).to_owned()).collect(),
        });
        match self.rpc {
            Rpc::GetKtpResult => AnyRequest::Get(GetKtpResultRequest {
                read_mask,
                reference_id: self.reference_id.clone(),
                wait: self.wait,
            }),
            Rpc::SubmitKtp => {
                AnyRequest::Submit(submit_request(self.image.clone(), &self.reference_id))
            }
            Rpc::ExtractKtp => AnyRequest::Extract(ExtractKtpRequest {
                read_mask,
                ..extract_request(self.image.clone(), &self.reference_id)
            }),
        }
    }

    /// Over `wire` instead of gRPC.
    fn over(wire: Wire, rpc: Rpc, reference_id: &str) -> Self {
        Self {
            wire,
            ..Self::new(rpc, reference_id)
        }
    }

    /// Sends the call: gRPC on `client`, another wire to `addr`.
    async fn on(self, client: KtpServiceClient<Channel>, addr: SocketAddr) -> CallResult {
        if self.wire == Wire::Grpc {
            return self.on_grpc(client).await;
        }
        let request = self.request();
        wire::send(
            self.wire,
            addr,
            self.rpc.method(),
            request,
            self.timeout,
            &self.metadata,
        )
        .await
    }

    async fn on_grpc(self, mut client: KtpServiceClient<Channel>) -> CallResult {
        macro_rules! send {
            ($method:ident, $message:expr) => {{
                let mut request = Request::new($message);
                if let Some(t) = self.timeout {
                    request.set_timeout(t);
                }
                for (k, v) in &self.metadata {
                    request.metadata_mut().insert(*k, v.parse().expect("ASCII"));
                }
                client.$method(request).await.map(|_| ())
            }};
        }
        match self.request() {
            AnyRequest::Get(m) => send!(get_ktp_result, m),
            AnyRequest::Submit(m) => send!(submit_ktp, m),
            AnyRequest::Extract(m) => send!(extract_ktp, m),
            AnyRequest::Raw(_) | AnyRequest::Json(_) => {
                unreachable!("the example's request is typed")
            }
        }
    }

    /// On the app's shared client connection.
    async fn send(self, app: &TestApp) -> CallResult {
        self.on(app.client.clone(), app.addr).await
    }

    /// On a connection of its own (the in-flight caps are process-wide).
    async fn alone(self, app: &TestApp) -> CallResult {
        self.on(KtpServiceClient::new(channel(app.addr).await), app.addr)
            .await
    }
}

/// Runs every example whose trigger `wanted` accepts; panics listing every
/// example whose answer was not the expected one.
async fn run_examples(wire: Wire, wanted: impl Fn(&Trigger) -> bool) -> usize {
    let mut ran = 0;
    let mut problems = Vec::new();
    for entry in TABLE {
        let examples = entry.examples.iter().filter(|x| wanted(&x.trigger));
        for example in examples.filter(|x| plays_over(wire, &x.trigger)) {
            ran += 1;
            // Named before it runs: a client that panics says which.
            eprintln!("{wire:?}: {} / {}", entry.name, example.name);
            if let Err(why) = run(example, wire).await {
                problems.push(format!("{} / {}: {why}", entry.name, example.name));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
    ran
}

/// Whether an example can be played over `wire`. A body that stalls is
/// played by raw HTTP/2 frames, gRPC's (the Connect edge's read time has
/// its own test); JSON cannot carry wrong protobuf bytes (its own
/// malformed inputs have their own tests).
fn plays_over(wire: Wire, trigger: &Trigger) -> bool {
    match trigger {
        Trigger::Provoke(Provoke::StalledBody) => wire == Wire::Grpc,
        Trigger::Provoke(Provoke::JsonUnknownMember(_) | Provoke::JsonWrongKind(_)) => {
            wire == Wire::ConnectJson
        }
        Trigger::Provoke(Provoke::ReferenceIdBytes(_) | Provoke::WrongWireType) => {
            wire != Wire::ConnectJson
        }
        // In JSON a mask's paths are lowerCamelCase (proto3's canonical
        // form), so `fullName` is no error there (tests/api/connect.rs).
        Trigger::Provoke(Provoke::ReadMask(paths)) => {
            wire != Wire::ConnectJson || !paths.iter().any(|p| p.contains(char::is_uppercase))
        }
        _ => true,
    }
}

fn result_call_answer(t: &Trigger) -> bool {
    matches!(t, Trigger::Upstream(_))
}

fn submit_call_answer(t: &Trigger) -> bool {
    matches!(t, Trigger::Submit(_) | Trigger::SubmitAfterLostAttempt(_))
}

/// A panicking shared request is a bug no request can cause: the
/// mapping's own tests (src/status/tests) play it.
fn provoked(t: &Trigger) -> bool {
    matches!(t, Trigger::Provoke(p) if *p != Provoke::SharedRequestLost)
}

/// The table's tests over one wire: every answer of the result call and
/// of the submit call, and every provoked example.
macro_rules! table_over {
    ($wire:expr, $results:ident, $submits:ident, $provoked:ident) => {
        #[tokio::test]
        async fn $results() {
            let ran = run_examples($wire, result_call_answer).await;
            assert!(ran >= 40, "only {ran} examples");
        }

        #[tokio::test]
        async fn $submits() {
            let ran = run_examples($wire, submit_call_answer).await;
            assert!(ran >= 25, "only {ran} examples");
        }

        #[tokio::test]
        async fn $provoked() {
            let ran = run_examples($wire, provoked).await;
            assert!(ran > 40, "only {ran} examples");
        }
    };
}

table_over!(
    Wire::Grpc,
    every_result_call_answer_of_the_table_gets_its_row,
    every_submit_call_answer_of_the_table_gets_its_row,
    every_provoked_example_of_the_table_gets_its_row
);
table_over!(
    Wire::ConnectJson,
    connect_json_every_result_call_answer_gets_its_row,
    connect_json_every_submit_call_answer_gets_its_row,
    connect_json_every_provoked_example_gets_its_row
);
table_over!(
    Wire::ConnectProto,
    connect_proto_every_result_call_answer_gets_its_row,
    connect_proto_every_submit_call_answer_gets_its_row,
    connect_proto_every_provoked_example_gets_its_row
);
table_over!(
    Wire::GrpcWeb,
    grpc_web_every_result_call_answer_gets_its_row,
    grpc_web_every_submit_call_answer_gets_its_row,
    grpc_web_every_provoked_example_gets_its_row
);

/// One example, on a gateway of its own.
async fn run(example: &Example, wire: Wire) -> Result<(), String> {
    let rpc = example.rpc;
    let (app, reference_id, result) = match example.trigger {
        Trigger::Upstream(answer) => {
            let app = TestApp::spawn().await;
            // An ExtractKtp's submit is accepted (unscripted), naming ID.
            app.upstream.on(ID, Reply::from(&answer));
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Trigger::Submit(answer) => {
            let app = TestApp::spawn().await;
            app.upstream.on_submit(ID, Reply::from(&answer));
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Trigger::SubmitAfterLostAttempt(answer) => {
            let app = TestApp::spawn().await;
            let attempts = Reply::sequence(vec![Reply::Close, Reply::from(&answer)]);
            app.upstream.on_submit(ID, attempts);
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Trigger::Provoke(what) => {
            let mut provoked = provoke(rpc, what, wire).await;
            // On a starved CPU the gateway's answer, 50 ms before the
            // deadline, can lose to the client's own timer (README, Error
            // mapping): that is the machine, not the gateway; try again.
            for _ in 1..3 {
                match &provoked.2 {
                    Err(s) if s.code() == Code::Cancelled && s.message() == "Timeout expired" => {
                        provoked = provoke(rpc, what, wire).await;
                    }
                    _ => break,
                }
            }
            provoked
        }
    };
    verdict(example, &reference_id, result)?;
    let attempts = app.upstream.attempts(&reference_id);
    let want = usize::try_from(example.expect.attempts).unwrap_or(usize::MAX);
    if attempts != want {
        return Err(format!("{attempts} upstream requests, expected {want}"));
    }
    Ok(())
}

/// Whether `result` is the example's answer.
fn verdict(example: &Example, reference_id: &str, result: CallResult) -> Result<(), String> {
    let want = &example.expect;
    let status = match (want.error, result) {
        (None, Ok(())) => return Ok(()),
        (None, Err(status)) => return Err(format!("expected OK, got {status:?}")),
        (Some(_), Ok(())) => return Err(format!("expected {}, got OK", want.code)),
        (Some(_), Err(status)) => status,
    };
    check::error_status(&status, want, reference_id)?;
    if let Detail::RetryInfo(Delay::RestOfCoolDown) =
        want.error.map(|f| f.detail).unwrap_or(Detail::None)
    {
        let delay = tonic_types::StatusExt::get_error_details(&status)
            .retry_info()
            .and_then(|r| r.retry_delay);
        if delay.is_none_or(|d| d > COOL_DOWN) {
            return Err(format!("RetryInfo {delay:?} is more than the cool-down"));
        }
    }
    // Every error echoes its request id in `x-request-id` and shows no
    // credential.
    let echoed = status
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok());
    let request_id = tonic_types::StatusExt::get_error_details(&status)
        .request_info()
        .map(|r| r.request_id.clone());
    if echoed.is_none() || echoed.map(str::to_owned) != request_id {
        return Err(format!(
            "x-request-id {echoed:?}, RequestInfo {request_id:?}"
        ));
    }
    if status.message().is_empty()
        || [APP_ID, API_KEY]
            .iter()
            .any(|s| status.message().contains(s))
    {
        return Err(format!("message {:?}", status.message()));
    }
    Ok(())
}

/// Scripts the example's first upstream call for `ID`: the submit call
/// for an image RPC, else the result call.
fn first_call(app: &TestApp, rpc: Rpc, reply: Reply) {
    if rpc.carries_image() {
        app.upstream.on_submit(ID, reply);
    } else {
        app.upstream.on(ID, reply);
    }
}

/// Makes a gateway-side example happen; returns the gateway, the call's
/// reference id and its result.
async fn provoke(rpc: Rpc, what: Provoke, wire: Wire) -> (TestApp, String, CallResult) {
    let ok = || Reply::Json(200, sample_success());
    match what {
        Provoke::ReferenceId(id) => {
            let app = TestApp::spawn().await;
            let result = Call::over(wire, rpc, id).send(&app).await;
            (app, id.to_owned(), result)
        }
        Provoke::LongReferenceId(len) => {
            let app = TestApp::spawn().await;
            let id = "R".repeat(len);
            let result = Call::over(wire, rpc, &id).send(&app).await;
            (app, id, result)
        }
        Provoke::ReferenceIdBytes(bytes) => {
            let app = TestApp::spawn().await;
            let request = RawRequest {
                reference_id: bytes.to_vec(),
            };
            let result = call_raw(&app, request, wire).await;
            (app, String::from_utf8_lossy(bytes).into_owned(), result)
        }
        Provoke::WrongWireType => {
            let app = TestApp::spawn().await;
            let result = call_raw(&app, WrongWireType { reference_id: 7 }, wire).await;
            (app, ID.to_owned(), result)
        }
        Provoke::JsonUnknownMember(member) | Provoke::JsonWrongKind(member) => {
            let app = TestApp::spawn().await;
            let value = match what {
                Provoke::JsonWrongKind(_) => serde_json::json!("yes"),
                _ => serde_json::json!(44),
            };
            let body = serde_json::json!({"referenceId": ID, member: value});
            let json = AnyRequest::Json(serde_json::to_vec(&body).expect("JSON"));
            let result = wire::send(wire, app.addr, rpc.method(), json, None, &[]).await;
            (app, ID.to_owned(), result)
        }
        Provoke::UnsupportedCompression => {
            let app = TestApp::spawn().await;
            app.upstream.on(ID, ok());
            let mut call = Call::over(wire, rpc, ID);
            call.metadata.push(("grpc-encoding", "gzip"));
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::BearerTokenMissing | Provoke::BearerTokenInvalid => {
            let mut tokens = tempfile::NamedTempFile::new().expect("tokens file");
            std::io::Write::write_all(&mut tokens, b"table-token-1\n").expect("write tokens");
            let app =
                TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(tokens.path())).await;
            app.upstream.on(ID, ok());
            let mut call = Call::over(wire, rpc, ID);
            if what == Provoke::BearerTokenInvalid {
                call.metadata
                    .push(("authorization", "Bearer table-token-2"));
            }
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::ReadMask(paths) => {
            let app = TestApp::spawn().await;
            first_call(&app, rpc, ok());
            let mut call = Call::over(wire, rpc, ID);
            call.read_mask = paths;
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::FieldNotAllowed => {
            let mut tokens = tempfile::NamedTempFile::new().expect("tokens file");
            std::io::Write::write_all(
                &mut tokens,
                b"table-token-1 caller=table fields=nik,full_name\n",
            )
            .expect("write tokens");
            let app =
                TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(tokens.path())).await;
            first_call(&app, rpc, ok());
            let mut call = Call::over(wire, rpc, ID);
            call.metadata
                .push(("authorization", "Bearer table-token-1"));
            call.read_mask = &["nik", "address"];
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::Overloaded => {
            let app = TestApp::spawn_with(|s| s.server.max_in_flight = Some(count(1))).await;
            app.upstream
                .on("BUSY", Reply::delayed(Duration::from_millis(800), ok()));
            app.upstream.on(ID, ok());
            let busy = app.spawn_call("BUSY");
            // The busy call is in flight once the upstream has its request.
            while app.upstream.attempts("BUSY") == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let result = Call::over(wire, rpc, ID).alone(&app).await;
            busy.await
                .expect("busy call task")
                .expect("the call in flight completes");
            (app, ID.to_owned(), result)
        }
        Provoke::SharedRequestLost => unreachable!("not played against the server"),
        Provoke::UpstreamSaturated => {
            // The busy request holds the one slot until its 2 s timeout; the
            // example's call gives up waiting after half of it.
            let app = TestApp::spawn_with(|s| {
                s.upstream.max_connections = count(1);
                s.upstream.timeout = secs(2);
            })
            .await;
            app.upstream.on("BUSY", Reply::delayed(SLOW, ok()));
            first_call(&app, rpc, ok());
            let busy = app.spawn_call("BUSY");
            while app.upstream.attempts("BUSY") == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let result = Call::over(wire, rpc, ID).alone(&app).await;
            busy.abort();
            (app, ID.to_owned(), result)
        }
        Provoke::ImageCallsOverloaded => {
            let app = TestApp::spawn_with(|s| s.submit.max_in_flight = count(1)).await;
            app.upstream.on_submit(
                "BUSY",
                Reply::delayed(Duration::from_millis(800), Reply::accepted("BUSY")),
            );
            let busy =
                tokio::spawn(Call::new(Rpc::SubmitKtp, "BUSY").on(app.client.clone(), app.addr));
            while app.upstream.attempts("BUSY") == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let result = Call::over(wire, rpc, ID).alone(&app).await;
            busy.await
                .expect("busy call task")
                .expect("the submit in flight completes");
            (app, ID.to_owned(), result)
        }
        Provoke::CallerDeadline => {
            let app = TestApp::spawn().await;
            first_call(&app, rpc, Reply::delayed(SLOW, ok()));
            let mut call = Call::over(wire, rpc, ID);
            call.timeout = Some(CALLER_DEADLINE);
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::CircuitOpen => {
            let app = TestApp::spawn_with(|s| {
                s.upstream.retry.max_attempts = attempts(1);
                s.upstream.breaker.failure_threshold = count32(1);
            })
            .await;
            app.upstream.on("TRIP", Reply::raw(503, &[], ""));
            app.upstream.on(ID, ok());
            let tripped = app.call("TRIP").await;
            assert!(tripped.is_err(), "the tripping call fails: {tripped:?}");
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::UpstreamTimeout => {
            let app = TestApp::spawn_with(short_timeout).await;
            first_call(&app, rpc, Reply::delayed(SLOW, ok()));
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::ConnectionRefused => {
            // A port that was just free: bind, learn it, release it.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let base = format!("http://127.0.0.1:{port}");
            let app = TestApp::spawn_with(|s| s.upstream.base_url = base_url(&base)).await;
            let result = Call::over(wire, rpc, ID).send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::ConnectionClosed => played(rpc, Reply::Close, wire).await,
        Provoke::CutMidBody => played(rpc, Reply::CutMidBody, wire).await,
        Provoke::ResetMidBody => {
            played(
                rpc,
                Reply::ResetMidBody(br#"{"data": {"nik": "35"#.to_vec()),
                wire,
            )
            .await
        }
        Provoke::Image(case) => {
            let app = TestApp::spawn().await;
            let mut call = Call::over(wire, rpc, ID);
            call.image = case.source(MAX_IMAGE_BYTES);
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::WaitEnds | Provoke::ResultNotReady => {
            // Unscripted: the submit is accepted, every poll not found.
            let app = TestApp::spawn_with(one_poll).await;
            let mut call = Call::over(wire, rpc, ID);
            call.wait = true;
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::NoAnswerInWait => {
            let app = TestApp::spawn_with(one_poll).await;
            app.upstream
                .on(ID, Reply::delayed(SLOW, Reply::not_found()));
            let mut call = Call::over(wire, rpc, ID);
            call.wait = true;
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
        Provoke::ShutdownWhileWaiting => {
            let mut app = TestApp::spawn_with(|s| {
                s.server.drain_delay = Duration::from_millis(200);
                s.wait.max_wait = wait_millis(20_000);
            })
            .await;
            let mut call = Call::over(wire, rpc, ID);
            call.wait = true;
            let waiting = tokio::spawn(call.on(app.client.clone(), app.addr));
            // Once the call polls (it waits, then), the SIGTERM.
            for _ in 0..200 {
                if app
                    .upstream
                    .results()
                    .iter()
                    .any(|r| r.reference_id().as_deref() == Some(ID))
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            app.begin_shutdown();
            let result = waiting.await.expect("the call's task");
            (app, ID.to_owned(), result)
        }
        Provoke::StalledBody => {
            let app = TestApp::spawn_with(|s| s.server.request_read_timeout = millis(300)).await;
            let connection = h2_connection(app.addr).await;
            let stalled = Stalled::open(&connection, rpc.method(), None, 1000, 10).await;
            let status = stalled.answer().await;
            (app, ID.to_owned(), Err(status))
        }
        Provoke::OversizedImageMessage => {
            let app = TestApp::spawn().await;
            let mut call = Call::over(wire, rpc, ID);
            call.image = ImageSource::File(images::padded(
                images::valid(),
                ImageCase::OVER_MESSAGE_LIMIT,
            ));
            let result = call.send(&app).await;
            (app, ID.to_owned(), result)
        }
    }
}

/// A gateway whose upstream answers the call's first request with `reply`,
/// and the call.
async fn played(rpc: Rpc, reply: Reply, wire: Wire) -> (TestApp, String, CallResult) {
    let app = TestApp::spawn().await;
    first_call(&app, rpc, reply);
    let result = Call::over(wire, rpc, ID).send(&app).await;
    (app, ID.to_owned(), result)
}

/// `GetKtpResult` with any message as the request.
async fn call_raw<M>(app: &TestApp, message: M, wire: Wire) -> CallResult
where
    M: prost::Message + Default + Send + Sync + 'static,
{
    if wire != Wire::Grpc {
        let raw = AnyRequest::Raw(message.encode_to_vec());
        return wire::send(wire, app.addr, Rpc::GetKtpResult.method(), raw, None, &[]).await;
    }
    let mut grpc = tonic::client::Grpc::new(channel(app.addr).await);
    grpc.ready().await.expect("ready");
    let path = PathAndQuery::from_static("/ktp.v1.KtpService/GetKtpResult");
    let codec = tonic_prost::ProstCodec::<M, GetKtpResultResponse>::default();
    grpc.unary(Request::new(message), path, codec)
        .await
        .map(|_| ())
}
