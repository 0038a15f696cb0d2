//! Connect's own rules on the gRPC port, with `curl` as the client: the
//! JSON both ways (lowerCamelCase out; either name in; a read mask as a
//! string or a `{"paths"}` object; an unknown field named), 405 and 415,
//! `connect-protocol-version`, the limits on the decoded message and on
//! the body's arrival, `x-request-id`, and the `protocol` label. The error
//! table's rows over Connect are played by `table.rs`.

use std::time::Duration;

use base64::Engine as _;
use ktp_gateway::proto::SubmitKtpResponse;
use ktp_testkit::{fake_upstream::Reply, images};
use prost::Message as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{
    curl::{CurlAnswer, CurlRequest, Http},
    helpers::{TestApp, message_bytes, millis, sample_success, self_signed_tls},
};

const GET: &str = "/ktp.v1.KtpService/GetKtpResult";
const SUBMIT: &str = "/ktp.v1.KtpService/SubmitKtp";

fn connect(
    http: Http,
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> CurlRequest {
    CurlRequest {
        http,
        method: "POST",
        url: format!("http://{}{path}", app.addr),
        headers: vec![("content-type", content_type.to_owned())],
        body,
    }
}

async fn json_call(http: Http, app: &TestApp, path: &str, body: Value) -> CurlAnswer {
    let body = serde_json::to_vec(&body).expect("JSON");
    connect(http, app, path, "application/json", body)
        .send()
        .await
}

fn json_of(answer: &CurlAnswer) -> Value {
    serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

/// The `google.rpc.BadRequest` field names of a Connect error.
fn bad_request_fields(error: &Value) -> Vec<String> {
    let details = error["details"].as_array().cloned().unwrap_or_default();
    details
        .iter()
        .filter(|d| d["type"] == "google.rpc.BadRequest")
        .flat_map(|d| {
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(d["value"].as_str().expect("value"))
                .expect("unpadded base64");
            tonic_types::pb::BadRequest::decode(&*bytes)
                .expect("BadRequest")
                .field_violations
                .into_iter()
                .map(|v| v.field)
        })
        .collect()
}

/// The `ErrorInfo` of a Connect error: reason and metadata.
fn error_info(error: &Value) -> tonic_types::pb::ErrorInfo {
    let details = error["details"].as_array().cloned().unwrap_or_default();
    let info = details
        .iter()
        .find(|d| d["type"] == "google.rpc.ErrorInfo")
        .expect("an ErrorInfo");
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(info["value"].as_str().expect("value"))
        .expect("unpadded base64");
    tonic_types::pb::ErrorInfo::decode(&*bytes).expect("ErrorInfo")
}

#[tokio::test]
async fn answers_are_lower_camel_case_json_over_http1_and_http2_and_take_either_name() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for (http, name) in [(Http::One, "referenceId"), (Http::Two, "reference_id")] {
        let answer = json_call(http, &app, GET, json!({ name: "CONNECT-1" })).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert!(
            answer
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty())
        );
        let body = json_of(&answer);
        assert_eq!(body["referenceId"], "CONNECT-1", "{body}");
        // Enums by name, lowerCamelCase keys, no snake_case anywhere.
        assert!(
            body["genderValue"]
                .as_str()
                .is_some_and(|g| g.starts_with("GENDER_")),
            "{body}"
        );
        assert!(body["checks"]["nikFormat"].is_string(), "{body}");
        assert!(body.get("reference_id").is_none() && body.get("full_name").is_none());
    }
}

#[tokio::test]
async fn a_read_mask_is_the_canonical_string_or_the_paths_object() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for mask in [
        json!("fullName,checks"),
        json!({"paths": ["full_name", "checks"]}),
    ] {
        let answer = json_call(
            Http::One,
            &app,
            GET,
            json!({"referenceId": "MASK-1", "readMask": mask}),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let body = json_of(&answer);
        let mut keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["checks", "fullName", "referenceId"], "{mask}");
    }
    // An unknown path is named as the caller wrote it.
    let answer = json_call(
        Http::One,
        &app,
        GET,
        json!({"referenceId": "MASK-2", "readMask": "fullName,shoeSize"}),
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let error = json_of(&answer);
    assert_eq!(error["code"], "invalid_argument");
    let info = error_info(&error);
    assert_eq!(info.reason, "INVALID_READ_MASK");
    assert_eq!(
        info.metadata.get("path").map(String::as_str),
        Some("shoeSize")
    );
    assert_eq!(bad_request_fields(&error), ["read_mask"]);
}

#[tokio::test]
async fn an_unknown_field_is_invalid_argument_naming_it_and_costs_no_upstream_call() {
    let app = TestApp::spawn().await;
    let answer = json_call(
        Http::Two,
        &app,
        GET,
        json!({"referenceId": "X", "shoeSize": 44}),
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    let error = json_of(&answer);
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(error_info(&error).reason, "REQUEST_NOT_DECODABLE");
    assert_eq!(bad_request_fields(&error), ["shoeSize"]);
    // A value of the wrong kind names its field; the value is not echoed.
    let answer = json_call(Http::One, &app, GET, json!({"wait": "3174012345678901"})).await;
    let error = json_of(&answer);
    assert_eq!(bad_request_fields(&error), ["wait"]);
    assert!(!String::from_utf8_lossy(&answer.body).contains("3174012345678901"));
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn another_method_is_405_another_content_type_415_another_version_invalid_argument() {
    let app = TestApp::spawn().await;
    let mut get = connect(Http::One, &app, GET, "application/json", Vec::new());
    get.method = "GET";
    let answer = get.send().await;
    assert_eq!(
        (answer.status, answer.header("allow")),
        (405, Some("POST")),
        "{answer:?}"
    );
    let answer = connect(Http::Two, &app, GET, "text/plain", b"{}".to_vec())
        .send()
        .await;
    assert_eq!(answer.status, 415, "{answer:?}");
    for version in ["2", "0"] {
        let answer = connect(Http::One, &app, GET, "application/json", b"{}".to_vec())
            .header("connect-protocol-version", version)
            .send()
            .await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(json_of(&answer)["code"], "invalid_argument");
    }
    // Optional: absent, or 1, the call goes on (to the id's own check).
    for extra in [None, Some("1")] {
        let mut request = connect(Http::One, &app, GET, "application/json", b"{}".to_vec());
        if let Some(v) = extra {
            request = request.header("connect-protocol-version", v);
        }
        let error = json_of(&request.send().await);
        assert_eq!(error_info(&error).reason, "INVALID_REFERENCE_ID", "{error}");
    }
    // Connect calls are labelled as such; the refusals before any call are not calls.
    let scrape = app.scrape().await;
    assert!(
        scrape.contains(&format!(
            r#"ktp_gateway_grpc_requests_total{{code="INVALID_ARGUMENT",method="{GET}",protocol="connect"}} 4"#
        )),
        "{scrape}"
    );
}

#[tokio::test]
async fn the_image_limit_holds_the_decoded_image_not_its_base64() {
    // 100 KB images: the message limit is 100,000 + 16 KiB. An 110 KB
    // JSON body of a 82 KB image fits; a 120 KB image does not.
    let app = TestApp::spawn_with(|s| s.submit.max_image_bytes = message_bytes(100_000)).await;
    app.upstream.on_submit("B64-1", Reply::accepted("B64-1"));
    let image = |len| {
        base64::engine::general_purpose::STANDARD.encode(images::padded(images::valid(), len))
    };
    let fits = json!({"referenceId": "B64-1", "image": image(82_000)});
    let answer = json_call(Http::One, &app, SUBMIT, fits).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(json_of(&answer)["referenceId"], "B64-1");
    let too_large = json!({"referenceId": "B64-2", "image": image(120_000)});
    let answer = json_call(Http::One, &app, SUBMIT, too_large).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(error_info(&json_of(&answer)).reason, "REQUEST_TOO_LARGE");
    // The same in proto: the body is the message.
    let message = ktp_gateway::proto::SubmitKtpRequest {
        image_source: Some(ktp_gateway::proto::submit_ktp_request::ImageSource::Image(
            images::padded(images::valid(), 82_000).into(),
        )),
        validate_quality: false,
        reference_id: "B64-1".to_owned(),
    };
    app.upstream.on_submit("B64-1", Reply::accepted("B64-1"));
    let answer = connect(
        Http::Two,
        &app,
        SUBMIT,
        "application/proto",
        message.encode_to_vec(),
    )
    .send()
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/proto"));
    let submitted = SubmitKtpResponse::decode(&*answer.body).expect("a SubmitKtpResponse");
    assert_eq!(submitted.reference_id, "B64-1");
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_at_the_read_timeout() {
    let app = TestApp::spawn_with(|s| s.server.request_read_timeout = millis(300)).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    // Headers promise 100 bytes; 10 come.
    let head = format!(
        "POST {GET} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"referen",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.expect("read");
            answer.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&answer);
            if n == 0 || text.contains("REQUEST_READ_TIMEOUT") || text.contains("}]}") {
                break;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer well before 5 s: {}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(text.contains(r#""code":"deadline_exceeded""#), "{text}");
}

#[tokio::test]
async fn over_tls_both_http_versions_and_to_an_allowed_origin_with_cors() {
    const CONSOLE: &str = "https://console.example.com";
    let mut tls = None;
    let app = TestApp::spawn_with(|s| {
        tls = Some(self_signed_tls(s));
        s.server.cors_allowed_origins = ktp_gateway::config::CorsOrigins::parse([CONSOLE]).unwrap();
    })
    .await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for (http, version) in [(Http::One, "HTTP/1.1"), (Http::Two, "HTTP/2")] {
        let body = serde_json::to_vec(&json!({"referenceId": "TLS-1"})).expect("JSON");
        let mut request = connect(http, &app, GET, "application/json", body);
        request.url = format!("https://{}{GET}", app.addr);
        let answer = request.header("origin", CONSOLE).send().await;
        assert_eq!(
            (answer.version.as_str(), answer.status),
            (version, 200),
            "{answer:?}"
        );
        assert_eq!(json_of(&answer)["referenceId"], "TLS-1");
        assert_eq!(answer.header("access-control-allow-origin"), Some(CONSOLE));
    }
}

/// Every RPC answers over every protocol besides gRPC: a result, a submit,
/// and an extract (submit, then polls until the job is done), each answer
/// decoded as its RPC's message (`wire.rs` checks the encoding).
#[tokio::test]
async fn every_rpc_succeeds_over_connect_json_connect_proto_and_grpc_web() {
    use crate::{
        helpers::{extract_request, submit_request, valid_image},
        wire::{self, AnyRequest, Wire},
    };
    let app = TestApp::spawn_with(|s| {
        s.wait.poll_interval = millis(100);
        s.wait.max_poll_interval = millis(200);
    })
    .await;
    app.upstream.jobs_finish_after(Duration::from_millis(300));
    for wire in [Wire::ConnectJson, Wire::ConnectProto, Wire::GrpcWeb] {
        let id = |rpc: &str| format!("{wire:?}-{rpc}");
        let calls = [
            (
                GET,
                AnyRequest::Get(ktp_gateway::proto::GetKtpResultRequest {
                    reference_id: "REFERENCE_ID_KTP".to_owned(),
                    ..Default::default()
                }),
            ),
            (
                SUBMIT,
                AnyRequest::Submit(submit_request(valid_image(), &id("submit"))),
            ),
            (
                "/ktp.v1.KtpService/ExtractKtp",
                AnyRequest::Extract(extract_request(valid_image(), &id("extract"))),
            ),
        ];
        app.upstream
            .on("REFERENCE_ID_KTP", Reply::Json(200, sample_success()));
        for (path, request) in calls {
            let timeout = Some(Duration::from_secs(20));
            let answer = wire::send(wire, app.addr, path, request, timeout, &[]).await;
            assert!(answer.is_ok(), "{wire:?} {path}: {answer:?}");
        }
    }
    // Three of each protocol, recorded as such.
    let scrape = app.scrape().await;
    for protocol in ["connect", "grpc_web"] {
        let calls: f64 = scrape
            .lines()
            .filter(|l| l.starts_with("ktp_gateway_grpc_requests_total{"))
            .filter(|l| {
                l.contains(&format!("protocol=\"{protocol}\"")) && l.contains("code=\"OK\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        let want = if protocol == "connect" { 6.0 } else { 3.0 };
        assert_eq!(calls, want, "{protocol}: {scrape}");
    }
}
