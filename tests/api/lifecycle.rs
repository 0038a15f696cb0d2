//! Health, reflection, the caller's deadline, and graceful shutdown.

use std::time::{Duration, Instant};

use ktp_testkit::fake_upstream::Reply;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{
    RawRequest, TestApp, channel, count32, expect_error, millis, sample_success, secs,
};

async fn check(app: &TestApp, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut health = HealthClient::new(channel(app.addr).await);
    let r = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(r.into_inner().status())
}

/// A health `Watch` of the KTP service, past its first answer, SERVING.
async fn watch_serving(
    health: &mut HealthClient<tonic::transport::Channel>,
) -> tonic::Streaming<HealthCheckResponse> {
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "ktp.v1.KtpService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    watch
}

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_ktp_service() {
    let app = TestApp::spawn().await;
    assert_eq!(check(&app, "").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        check(&app, "ktp.v1.KtpService").await.unwrap(),
        ServingStatus::Serving
    );
    let unknown = check(&app, "nope.v1.Nope").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn v1_list(app: &TestApp) -> Vec<String> {
    use v1::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client =
        v1::server_reflection_client::ServerReflectionClient::new(channel(app.addr).await);
    let req = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    match stream
        .next()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
    {
        MessageResponse::ListServicesResponse(l) => l.service.into_iter().map(|s| s.name).collect(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_every_service_and_know_error_details() {
    let app = TestApp::spawn().await;
    let mut names = v1_list(&app).await;
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "ktp.v1.KtpService"
        ]
    );

    use v1alpha::{
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(channel(app.addr).await);
    let requests = [
        "ktp.v1.KtpService",
        "google.rpc.ErrorInfo",
        "google.rpc.RetryInfo",
        "google.type.Date",
    ]
    .map(|symbol| v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    });
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..4 {
        match stream
            .next()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap()
        {
            MessageResponse::FileDescriptorResponse(f) => {
                assert!(!f.file_descriptor_proto.is_empty())
            }
            other => panic!("symbol not found: {other:?}"),
        }
    }
}

#[tokio::test]
async fn caller_deadline_beats_a_slow_upstream_and_cancels_the_request() {
    let app = TestApp::spawn_with(|s| s.upstream.timeout = secs(30)).await;
    app.upstream.on("REF_HANG", Reply::Hang);
    let started = Instant::now();
    let result = app
        .call_with("REF_HANG", |r| r.set_timeout(Duration::from_millis(300)))
        .await;
    let elapsed = started.elapsed();
    let e = expect_error(result);
    assert_eq!(
        (e.code, e.reason()),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED")
    );
    assert_eq!(e.domain(), "ktp-gateway");
    assert!(
        elapsed < Duration::from_secs(3),
        "answered promptly, took {elapsed:?}"
    );
    // The upstream request is dropped, not left running.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.upstream.abandoned() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.upstream.abandoned(),
        1,
        "upstream connection closed by the gateway"
    );
}

#[tokio::test]
async fn upstream_timeout_shorter_than_the_deadline_wins() {
    let app = TestApp::spawn_with(|s| s.upstream.timeout = millis(200)).await;
    app.upstream.on("REF_HANG", Reply::Hang);
    let e = expect_error(
        app.call_with("REF_HANG", |r| r.set_timeout(Duration::from_secs(10)))
            .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_TIMEOUT")
    );
}

#[tokio::test]
async fn shutdown_flips_health_lets_in_flight_calls_finish_and_refuses_new_connections() {
    let mut app = TestApp::spawn_with(|s| s.server.shutdown_grace = secs(10)).await;
    app.upstream.on(
        "REF_INFLIGHT",
        Reply::delayed(
            // Outlasts the 1 s drain delay: the call is still running when
            // the listener closes and the connection gets GOAWAY.
            Duration::from_millis(2000),
            Reply::Json(200, sample_success()),
        ),
    );
    let mut health = HealthClient::new(channel(app.addr).await);
    let mut watch = watch_serving(&mut health).await;

    let in_flight = app.spawn_call("REF_INFLIGHT");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app.begin_shutdown();

    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    // New connections are refused once the listener is closed.
    let refused = async {
        loop {
            if tokio::net::TcpStream::connect(app.addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("listener closed");

    let response = in_flight.await.unwrap().expect("in-flight call completes");
    assert_eq!(response.into_inner().full_name, "SULISTYONO");
    drop(watch);
    drop(health);
    let handle = app.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("server stops")
        .unwrap()
        .expect("clean exit");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Health keeps its promise until the process exits: a Check answered after
/// the drain delay (its stream was opened before the listener closed, its
/// request arrives after) says NOT_SERVING, not NOT_FOUND; a Watch started
/// before shutdown sees SERVING, NOT_SERVING, then ends with OK, not a
/// transport error.
#[tokio::test]
async fn health_says_not_serving_until_exit_and_watch_streams_end_cleanly() {
    let mut app = TestApp::spawn_with(|s| {
        s.server.shutdown_grace = secs(10);
        s.server.drain_delay = Duration::from_millis(500);
    })
    .await;
    let mut health = HealthClient::new(channel(app.addr).await);
    let mut watch = watch_serving(&mut health).await;
    // A Check whose request message is held back: its HTTP/2 stream is
    // open now, its message comes only once the listener has closed.
    let (release, held_message) = tokio::sync::mpsc::channel(1);
    let mut grpc = tonic::client::Grpc::new(channel(app.addr).await);
    grpc.ready().await.expect("ready");
    let held_check = tokio::spawn(async move {
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let request =
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(held_message));
        grpc.client_streaming(request, path, codec).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.begin_shutdown();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::NotServing
    );
    for service in ["", "ktp.v1.KtpService"] {
        let during = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("Check during the drain delay");
        assert_eq!(during.into_inner().status(), ServingStatus::NotServing);
    }
    let refused = async {
        while tokio::net::TcpStream::connect(app.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .expect("the listener closes after the drain delay");
    let end = tokio::time::timeout(Duration::from_secs(3), watch.next())
        .await
        .expect("the Watch stream ends once the listener closes");
    assert!(
        end.is_none(),
        "the Watch stream must end with OK after NOT_SERVING, got {end:?}"
    );

    release
        .send(HealthCheckRequest {
            service: "ktp.v1.KtpService".into(),
        })
        .await
        .expect("the held Check is waiting");
    drop(release);
    let after = tokio::time::timeout(Duration::from_secs(5), held_check)
        .await
        .expect("the held Check is answered")
        .expect("task")
        .expect("Check after the drain delay answers, not NOT_FOUND");
    assert_eq!(after.into_inner().status(), ServingStatus::NotServing);
    drop(health);
    let handle = app.handle.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("server stops")
        .unwrap()
        .expect("clean exit");
}

#[tokio::test]
async fn a_stuck_call_cannot_hold_shutdown_past_the_grace_period() {
    let mut app = TestApp::spawn_with(|s| {
        s.server.shutdown_grace = millis(500);
        s.server.drain_delay = Duration::from_millis(100);
        s.upstream.timeout = secs(60);
    })
    .await;
    app.upstream.on("REF_STUCK", Reply::Hang);
    let _stuck = app.spawn_call("REF_STUCK");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let took = app.shut_down_within(Duration::from_secs(10)).await;
    assert!(
        took >= Duration::from_millis(400),
        "waited for the grace period"
    );
}

#[tokio::test]
async fn a_silent_connection_cannot_hold_shutdown_past_the_grace_period() {
    let mut app = TestApp::spawn_with(|s| {
        s.server.shutdown_grace = millis(600);
        s.server.drain_delay = Duration::from_millis(100);
    })
    .await;
    // Connected, but never says a word (no HTTP/2 preface).
    let _silent = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let took = app.shut_down_within(Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn oversized_requests_and_headers_are_refused() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    // A request message over the 16 KiB cap: refused by the gRPC layer.
    let big = "R".repeat(20 * 1024);
    let err = expect_error(
        app.call_with(&big, |r| {
            r.metadata_mut()
                .insert("x-request-id", "big-1".parse().unwrap());
        })
        .await,
    );
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    assert_eq!(err.reason(), "REQUEST_TOO_LARGE");
    assert_eq!(err.domain(), "ktp-gateway");
    assert_eq!(err.request_id(), "big-1");
    assert!(err.message.contains("16384"), "{}", err.message);
    // 20 KB of metadata: over the 16 KiB header-list cap.
    let status = app
        .call_with("HEADERS", |r| {
            r.metadata_mut()
                .insert("x-padding", "p".repeat(20 * 1024).parse().unwrap());
        })
        .await
        .expect_err("20 KB of headers");
    assert_ne!(status.code(), Code::Ok);
    assert!(
        app.upstream.requests().is_empty(),
        "neither reached the upstream"
    );
    app.call("FINE").await.expect("normal calls still work");
}

#[tokio::test]
async fn one_connection_gets_at_most_max_concurrent_streams() {
    let app = TestApp::spawn_with(|s| s.server.max_concurrent_streams = count32(2)).await;
    app.upstream.otherwise(Reply::Hang);
    // Three calls on the one connection of `app.client`: only two may run.
    let _calls: Vec<_> = (0..3).map(|i| app.spawn_call(&format!("S{i}"))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.upstream.requests().len(),
        2,
        "the third stream waits for a free slot"
    );
}

#[tokio::test]
async fn requests_tonic_refuses_get_details_a_log_line_and_metrics() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let mut grpc = tonic::client::Grpc::new(channel(app.addr).await);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(RawRequest {
        reference_id: b"REF-\xff\xfe".to_vec(),
    });
    request
        .metadata_mut()
        .insert("x-request-id", "not-utf8-1".parse().unwrap());
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/ktp.v1.KtpService/GetKtpResult");
    let codec = tonic_prost::ProstCodec::<
        RawRequest,
        ktp_gateway::proto::ktp::v1::GetKtpResultResponse,
    >::default();
    let err = expect_error(grpc.unary(request, path, codec).await);
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    assert_eq!(err.reason(), "REQUEST_NOT_DECODABLE");
    assert_eq!(err.request_id(), "not-utf8-1");
    assert!(
        app.upstream.requests().is_empty(),
        "never reached the upstream"
    );

    let counted = r#"ktp_gateway_grpc_requests_total{code="INVALID_ARGUMENT",method="/ktp.v1.KtpService/GetKtpResult",protocol="grpc"} 1"#;
    let page = app.scrape().await;
    assert!(page.contains(counted), "{page}");
}
