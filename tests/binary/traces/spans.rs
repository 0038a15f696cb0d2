//! What the spans of each kind of call look like at the collector.

use std::time::Duration;

use base64::Engine as _;
use ktp_gateway::proto::{SubmitKtpRequest, submit_ktp_request};
use ktp_testkit::{
    card_holders::person,
    fake_upstream::{FakeUpstream, Reply},
    images,
    otlp::{Collected, FakeCollector},
};
use tonic::Code;

use super::{
    API_KEY, APP_ID, CALLER_SPAN_ID, CALLER_TRACE_ID, call_log, client, one, request, start, trace,
};

const RESULT_SPAN: &str = "GET /ktp/id/extract-async/result";

fn five_hundred() -> Reply {
    Reply::Json(500, serde_json::json!({"message": "internal error"}))
}

/// Nothing personal, secret or from a URL's query, on any attribute or
/// event of `spans`.
fn assert_nothing_private(spans: &[Collected], image: &[u8]) {
    let image_b64 = base64::engine::general_purpose::STANDARD.encode(image);
    let forbidden: Vec<&str> = person::ALL
        .iter()
        .copied()
        .chain([APP_ID, API_KEY, "reference_id=", "Bearer"])
        .chain(image_b64.get(..24))
        .collect();
    for span in spans {
        let texts = span
            .attributes
            .iter()
            .chain(span.events.iter().flat_map(|(_, a)| a.iter()))
            .flat_map(|(k, v)| [k.as_str(), v.as_str()])
            .chain(span.events.iter().map(|(name, _)| name.as_str()))
            .chain([span.name.as_str()]);
        for text in texts {
            for bad in &forbidden {
                assert!(
                    !text.contains(bad),
                    "span {} carries {bad:?} in {text:?}",
                    span.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_call_is_a_server_span_with_one_client_attempt_that_the_upstream_is_told_of() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.on("plain-1", Reply::Json(200, person::success()));
    let mut gateway = start(&upstream, &collector, &[]).await;
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("plain-1", false, Some(true)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");

    let spans = trace(&collector, CALLER_TRACE_ID, 2).await;
    let server = one(&spans, "ktp.v1.KtpService/GetKtpResult");
    assert_eq!(server.kind, "SPAN_KIND_SERVER");
    assert_eq!(
        server.parent_span_id, CALLER_SPAN_ID,
        "the caller's span is the parent"
    );
    for (key, value) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "ktp.v1.KtpService"),
        ("rpc.method", "GetKtpResult"),
        ("rpc.grpc.status_code", "0"),
        ("ktp.reference_id", "plain-1"),
    ] {
        assert_eq!(server.attr(key), Some(value), "{key} of {server:#?}");
    }
    let attempt = one(&spans, RESULT_SPAN);
    assert_eq!(attempt.kind, "SPAN_KIND_CLIENT");
    assert_eq!(attempt.parent_span_id, server.span_id);
    let url = format!("{}/ktp/id/extract-async/result", upstream.base_url());
    let port = upstream.addr.port().to_string();
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/ktp/id/extract-async/result"),
        ("url.full", url.as_str()),
        ("server.address", "127.0.0.1"),
        ("server.port", port.as_str()),
        ("http.response.status_code", "200"),
        ("ktp.attempt", "1"),
    ] {
        assert_eq!(attempt.attr(key), Some(value), "{key} of {attempt:#?}");
    }
    assert_eq!(attempt.attr("error.type"), None);
    // The upstream hears of the attempt span, sampled.
    let sent = upstream.results();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].header("traceparent"),
        Some(format!("00-{CALLER_TRACE_ID}-{}-01", attempt.span_id).as_str())
    );
    // The resource, from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    assert_eq!(
        server.resource.get("service.name").map(String::as_str),
        Some("ktp-gateway-under-test")
    );
    assert_eq!(
        server.resource.get("k8s.pod.name").map(String::as_str),
        Some("ktp-gateway-7d9f-abcde")
    );
    assert_eq!(
        server
            .resource
            .get("k8s.namespace.name")
            .map(String::as_str),
        Some("identity")
    );
    // The log line joins the trace.
    let line = call_log(&mut gateway, "plain-1");
    assert_eq!(line["trace_id"], CALLER_TRACE_ID);
    assert_eq!(line["span_id"], server.span_id.as_str());
    assert_nothing_private(&spans, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_has_one_client_span_per_attempt() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.on(
        "retried-1",
        Reply::sequence(vec![
            Reply::Json(503, serde_json::json!({"message": "busy"})),
            Reply::Json(200, person::success()),
        ]),
    );
    let gateway = start(&upstream, &collector, &[]).await;
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("retried-1", false, Some(true)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    let spans = trace(&collector, CALLER_TRACE_ID, 3).await;
    let server = one(&spans, "ktp.v1.KtpService/GetKtpResult");
    let mut attempts: Vec<&Collected> = spans.iter().filter(|s| s.name == RESULT_SPAN).collect();
    attempts.sort_by_key(|s| s.attr("ktp.attempt").map(str::to_owned));
    assert_eq!(attempts.len(), 2, "{spans:#?}");
    let (first, second) = (attempts[0], attempts[1]);
    assert!(attempts.iter().all(|a| a.parent_span_id == server.span_id));
    assert_eq!(first.attr("ktp.attempt"), Some("1"));
    assert_eq!(first.attr("http.response.status_code"), Some("503"));
    assert_eq!(first.attr("error.type"), Some("503"));
    assert_eq!(first.status, "STATUS_CODE_ERROR");
    assert_eq!(second.attr("ktp.attempt"), Some("2"));
    assert_eq!(second.attr("error.type"), None);
    let sent: Vec<String> = upstream
        .results()
        .iter()
        .filter_map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        [first, second].map(|a| format!("00-{CALLER_TRACE_ID}-{}-01", a.span_id)),
        "each attempt tells the upstream its own span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_call_links_to_the_attempt_it_shared() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.on(
        "shared-1",
        Reply::delayed(
            Duration::from_millis(600),
            Reply::Json(200, person::success()),
        ),
    );
    let mut gateway = start(&upstream, &collector, &[]).await;
    let (mut a, mut b) = (client(&gateway).await, client(&gateway).await);
    // Roots (no traceparent): two traces, one upstream request.
    let first =
        tokio::spawn(async move { a.get_ktp_result(request("shared-1", false, None)).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut second = request("shared-1", false, None);
    second
        .metadata_mut()
        .insert("x-request-id", "req-shared-2".parse().expect("ASCII"));
    let second = b.get_ktp_result(second).await;
    assert!(second.is_ok() && first.await.expect("task").is_ok());
    assert_eq!(upstream.results().len(), 1, "coalesced into one request");

    let leader = call_log(&mut gateway, "shared-1");
    #[expect(
        clippy::disallowed_methods,
        reason = "synchronous harness, multi-thread runtime"
    )]
    let follower = tokio::task::block_in_place(|| gateway.call_log("req-shared-2"));
    let leader_trace = leader["trace_id"].as_str().expect("trace id").to_owned();
    let follower_trace = follower["trace_id"].as_str().expect("trace id").to_owned();
    assert_ne!(leader_trace, follower_trace);
    let leader_spans = trace(&collector, &leader_trace, 2).await;
    let follower_spans = trace(&collector, &follower_trace, 1).await;
    let attempt = one(&leader_spans, RESULT_SPAN);
    assert!(
        follower_spans.iter().all(|s| s.name != RESULT_SPAN),
        "{follower_spans:#?}"
    );
    let follower_server = one(&follower_spans, "ktp.v1.KtpService/GetKtpResult");
    assert_eq!(
        follower_server.links,
        [(leader_trace.clone(), attempt.span_id.clone())],
        "the follower links to the attempt it shared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_is_one_span_whose_polls_are_its_client_children() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.on(
        "waited-1",
        Reply::sequence(vec![
            Reply::not_found(),
            Reply::not_found(),
            Reply::Json(200, person::success()),
        ]),
    );
    let extra = [
        ("KTP_GATEWAY__WAIT__POLL_INTERVAL", "100ms"),
        ("KTP_GATEWAY__WAIT__MAX_POLL_INTERVAL", "100ms"),
    ];
    let gateway = start(&upstream, &collector, &extra).await;
    let answer = client(&gateway)
        .await
        .get_ktp_result(request("waited-1", true, Some(true)))
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    let spans = trace(&collector, CALLER_TRACE_ID, 5).await;
    let server = one(&spans, "ktp.v1.KtpService/GetKtpResult");
    let wait = one(&spans, "wait");
    assert_eq!(wait.kind, "SPAN_KIND_INTERNAL");
    assert_eq!(wait.parent_span_id, server.span_id);
    let polls: Vec<&Collected> = spans.iter().filter(|s| s.name == RESULT_SPAN).collect();
    assert_eq!(polls.len(), 3, "{spans:#?}");
    for poll in &polls {
        assert_eq!(poll.kind, "SPAN_KIND_CLIENT");
        assert_eq!(
            poll.parent_span_id, wait.span_id,
            "a poll is the wait's child"
        );
    }
    let sent = upstream.results();
    for (request, poll) in sent.iter().zip(&polls) {
        let traceparent = request.header("traceparent").expect("traceparent");
        assert!(
            polls.iter().any(|p| traceparent.contains(&p.span_id)),
            "{traceparent} names no poll span; {poll:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_refusals_say_so_on_the_server_span() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.otherwise(five_hundred());
    let extra = [
        ("KTP_GATEWAY__UPSTREAM__RETRY__MAX_ATTEMPTS", "1"),
        ("KTP_GATEWAY__UPSTREAM__BREAKER__FAILURE_THRESHOLD", "1"),
        ("KTP_GATEWAY__UPSTREAM__BREAKER__COOLDOWN", "60s"),
    ];
    let gateway = start(&upstream, &collector, &extra).await;
    let mut ktp = client(&gateway).await;
    let failed = ktp
        .get_ktp_result(request("broken-1", false, Some(true)))
        .await;
    assert_eq!(failed.map(|_| ()).unwrap_err().code(), Code::Unavailable);
    // The circuit is open now: the next call is refused before any attempt.
    let refused = ktp
        .get_ktp_result(request("broken-2", false, Some(true)))
        .await;
    assert_eq!(refused.map(|_| ()).unwrap_err().code(), Code::Unavailable);
    assert_eq!(upstream.results().len(), 1);

    let spans = trace(&collector, CALLER_TRACE_ID, 3).await;
    let servers: Vec<&Collected> = spans
        .iter()
        .filter(|s| s.kind == "SPAN_KIND_SERVER")
        .collect();
    assert_eq!(servers.len(), 2, "{spans:#?}");
    let by_id = |id: &str| {
        *servers
            .iter()
            .find(|s| s.attr("ktp.reference_id") == Some(id))
            .expect(id)
    };
    let (failed, refused) = (by_id("broken-1"), by_id("broken-2"));
    for server in [failed, refused] {
        assert_eq!(server.attr("rpc.grpc.status_code"), Some("14"));
        assert_eq!(server.status, "STATUS_CODE_ERROR");
    }
    let attempt = one(&spans, RESULT_SPAN);
    assert_eq!(attempt.parent_span_id, failed.span_id);
    assert_eq!(attempt.attr("error.type"), Some("500"));
    assert!(failed.events.is_empty(), "an attempt was made: {failed:#?}");
    assert_eq!(refused.events.len(), 1, "{refused:#?}");
    let (name, attributes) = &refused.events[0];
    assert_eq!(name, "ktp.refused");
    assert_eq!(
        attributes.get("ktp.reason").map(String::as_str),
        Some("UPSTREAM_CIRCUIT_OPEN")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_span_carries_personal_data_an_image_a_query_or_a_secret() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.jobs_finish_after(Duration::ZERO);
    upstream.otherwise(Reply::Json(200, person::success()));
    let extra = [("KTP_GATEWAY__UPSTREAM__REFERENCE_ID_IN", "query")];
    let gateway = start(&upstream, &collector, &extra).await;
    let mut ktp = client(&gateway).await;
    let image = images::valid();
    let mut submit = tonic::Request::new(SubmitKtpRequest {
        image_source: Some(submit_ktp_request::ImageSource::Image(image.clone().into())),
        validate_quality: false,
        reference_id: "private-1".to_owned(),
    });
    let traceparent = format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    submit
        .metadata_mut()
        .insert("traceparent", traceparent.parse().expect("ASCII"));
    assert!(ktp.submit_ktp(submit).await.is_ok());
    assert!(
        ktp.get_ktp_result(request("private-1", true, Some(true)))
            .await
            .is_ok()
    );
    let spans = trace(&collector, CALLER_TRACE_ID, 4).await;
    assert!(
        spans.iter().any(|s| s.name == "POST /ktp/id/extract-async"),
        "{spans:#?}"
    );
    assert!(spans.iter().any(|s| s.name == RESULT_SPAN), "{spans:#?}");
    assert!(
        upstream
            .results()
            .iter()
            .all(|r| r.query_value("reference_id").is_some()),
        "the id went in the query, which no span may show"
    );
    assert_nothing_private(&spans, &image);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_span_names_the_caller_never_its_token() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.otherwise(Reply::Json(200, person::success()));
    let mut tokens = tempfile::NamedTempFile::new().expect("a tokens file");
    std::io::Write::write_all(&mut tokens, b"span-token-77 caller=kyc-lite\n").expect("write");
    let path = tokens.path().to_str().expect("UTF-8 path");
    let gateway = start(
        &upstream,
        &collector,
        &[("KTP_GATEWAY__AUTH__TOKENS_FILE", path)],
    )
    .await;
    let mut call = request("caller-1", false, Some(true));
    call.metadata_mut().insert(
        "authorization",
        "Bearer span-token-77".parse().expect("ASCII"),
    );
    assert!(client(&gateway).await.get_ktp_result(call).await.is_ok());
    let spans = trace(&collector, CALLER_TRACE_ID, 2).await;
    let server = one(&spans, "ktp.v1.KtpService/GetKtpResult");
    assert_eq!(server.attr("ktp.caller"), Some("kyc-lite"));
    for span in &spans {
        assert!(
            span.attributes
                .values()
                .all(|v| !v.contains("span-token-77")),
            "{span:#?}"
        );
    }
}

/// A Connect call's SERVER span says `connect_rpc`; gRPC-Web is gRPC's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_calls_span_says_connect_rpc_and_a_grpc_web_calls_grpc() {
    let (upstream, collector) = (FakeUpstream::start().await, FakeCollector::start().await);
    upstream.otherwise(Reply::Json(200, person::success()));
    let mut gateway = start(&upstream, &collector, &[]).await;
    let traceparent = format!("traceparent: 00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01");
    let url = format!("http://{}/ktp.v1.KtpService/GetKtpResult", gateway.addr);
    let web_body = {
        let message = prost::Message::encode_to_vec(&ktp_gateway::proto::GetKtpResultRequest {
            reference_id: "web-1".to_owned(),
            ..Default::default()
        });
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        framed.extend_from_slice(&message);
        framed
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let web_file = dir.path().join("web");
    std::fs::write(&web_file, web_body).expect("body");
    let curl = std::env::var("CURL").unwrap_or_else(|_| "curl".to_owned());
    let json = r#"{"referenceId":"connect-1"}"#.to_owned();
    for (id, content_type, body) in [
        ("connect-1", "application/json", json),
        (
            "web-1",
            "application/grpc-web+proto",
            format!("@{}", web_file.display()),
        ),
    ] {
        let mut command = std::process::Command::new(&curl);
        command
            .args(["--silent", "--show-error", "--fail", "--http1.1"])
            .args(["--output", "/dev/null"])
            .args(["--header", &format!("content-type: {content_type}")])
            .args(["--header", &format!("x-request-id: req-{id}")])
            .args(["--header", &traceparent, "--data-binary", &body, &url]);
        let ran = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("curl task")
            .expect("curl runs (scripts/test installs it)");
        assert!(ran.status.success(), "{content_type}: {ran:?}");
    }
    let spans = trace(&collector, CALLER_TRACE_ID, 4).await;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "ktp.v1.KtpService/GetKtpResult")
        .collect();
    let system_of = |id: &str| {
        servers
            .iter()
            .find(|s| s.attr("ktp.reference_id") == Some(id))
            .and_then(|s| s.attr("rpc.system"))
            .map(str::to_owned)
    };
    assert_eq!(
        system_of("connect-1").as_deref(),
        Some("connect_rpc"),
        "{servers:#?}"
    );
    assert_eq!(system_of("web-1").as_deref(), Some("grpc"), "{servers:#?}");
    // The log line says which protocol too.
    assert_eq!(call_log(&mut gateway, "connect-1")["protocol"], "connect");
    assert_eq!(call_log(&mut gateway, "web-1")["protocol"], "grpc_web");
}
