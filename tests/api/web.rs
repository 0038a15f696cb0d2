//! gRPC-Web on the gRPC port, with `curl` as the client (HTTP/1.1 and
//! HTTP/2 prior knowledge, binary and text mode, and over TLS through
//! ALPN): answers, the status and every detail of an error in the trailer
//! frame, the call path's auth and metrics, CORS, and plain gRPC on the
//! same port.

use ktp_gateway::{
    config::CorsOrigins,
    proto::{GetKtpResultRequest, GetKtpResultResponse},
};
use ktp_testkit::fake_upstream::Reply;
use prost::Message as _;
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::{
    curl::{CurlAnswer, CurlRequest, Http},
    helpers::{TestApp, sample_success, self_signed_tls, tokens_file},
};

const GET: &str = "/ktp.v1.KtpService/GetKtpResult";
/// Every gRPC-Web way in: both HTTP versions, binary and text mode.
const WAYS: [(Http, &str); 4] = [
    (Http::One, "application/grpc-web+proto"),
    (Http::Two, "application/grpc-web"),
    (Http::One, "application/grpc-web-text"),
    (Http::Two, "application/grpc-web-text"),
];

fn get(id: &str) -> GetKtpResultRequest {
    GetKtpResultRequest {
        reference_id: id.to_owned(),
        ..Default::default()
    }
}

/// The status a gRPC-Web answer carries in its trailer frame, checked to
/// be there and nowhere else.
fn trailer_status(answer: &CurlAnswer) -> Status {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.header("grpc-status").is_none(),
        "the status must be in the trailer frame, not the headers: {answer:?}"
    );
    let body = answer.web();
    let trailers = body.trailers.expect("a trailer frame");
    Status::from_header_map(&trailers).expect("grpc-status in the trailer frame")
}

#[tokio::test]
async fn grpc_web_calls_are_answered_over_http1_and_http2_in_binary_and_text_mode() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for (http, content_type) in WAYS {
        let answer = CurlRequest::web(http, app.addr, GET, content_type, &get("WEB-OK"))
            .send()
            .await;
        let way = format!("{http:?} {content_type}");
        let version = match http {
            Http::One => "HTTP/1.1",
            Http::Two => "HTTP/2",
        };
        assert_eq!(answer.version, version, "{way}");
        assert_eq!(answer.status, 200, "{way}: {answer:?}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|ct| ct.starts_with(content_type.trim_end_matches("+proto"))),
            "{way}: {answer:?}"
        );
        assert!(answer.header("x-request-id").is_some(), "{way}");
        let body = answer.web();
        assert_eq!(body.messages.len(), 1, "{way}: {body:?}");
        let card = GetKtpResultResponse::decode(body.messages[0].as_slice()).expect("a response");
        assert_eq!(card.reference_id, "WEB-OK", "{way}");
        assert_eq!(card.nik, "3506042602660001", "{way}");
        let trailers = body.trailers.expect("a trailer frame");
        assert_eq!(trailers["grpc-status"], "0", "{way}");
    }

    // Plain gRPC on the same port, next to them.
    app.call("WEB-OK").await.expect("plain gRPC still works");
    let page = app.scrape().await;
    for (protocol, calls) in [("grpc_web", 4), ("grpc", 1)] {
        let series = format!(
            r#"ktp_gateway_grpc_requests_total{{code="OK",method="{GET}",protocol="{protocol}"}} {calls}"#
        );
        assert!(page.contains(&series), "missing {series}\n{page}");
        let timed = format!(
            r#"ktp_gateway_grpc_request_duration_seconds_count{{method="{GET}",protocol="{protocol}"}} {calls}"#
        );
        assert!(page.contains(&timed), "missing {timed}");
    }
}

/// `web` and `grpc` carry the same `google.rpc.Status`: code, message and
/// every detail, in the same order (`ErrorInfo`'s metadata is a map, whose
/// encoding may order its entries differently).
fn same_status(web: &Status, grpc: &Status, way: &str) {
    use tonic_types::pb;
    let decode = |s: &Status| pb::Status::decode(s.details()).expect("a google.rpc.Status");
    let (web, grpc) = (decode(web), decode(grpc));
    assert_eq!(
        (web.code, &web.message),
        (grpc.code, &grpc.message),
        "{way}"
    );
    assert_eq!(web.details.len(), grpc.details.len(), "{way}");
    for (w, g) in web.details.iter().zip(&grpc.details) {
        assert_eq!(w.type_url, g.type_url, "{way}");
        if w.type_url.ends_with("google.rpc.ErrorInfo") {
            let info = |v: &[u8]| pb::ErrorInfo::decode(v).expect("ErrorInfo");
            assert_eq!(info(&w.value), info(&g.value), "{way}");
        } else {
            assert_eq!(w.value, g.value, "{way}: {}", w.type_url);
        }
    }
}

#[tokio::test]
async fn an_error_carries_its_code_message_and_every_detail_in_the_trailer_frame() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "WEB-404",
        Reply::Json(
            404,
            json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
        ),
    );
    // The same call over gRPC, with the same request id: what gRPC-Web
    // must carry, byte for byte.
    let grpc = app
        .call_with("WEB-404", |r| {
            r.metadata_mut()
                .insert("x-request-id", "web-req-404".parse().unwrap());
        })
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(grpc.code(), Code::NotFound);
    for (http, content_type) in WAYS {
        let way = format!("{http:?} {content_type}");
        let answer = CurlRequest::web(http, app.addr, GET, content_type, &get("WEB-404"))
            .header("x-request-id", "web-req-404")
            .send()
            .await;
        let status = trailer_status(&answer);
        assert!(answer.web().messages.is_empty(), "{way}");
        assert_eq!(status.code(), Code::NotFound, "{way}");
        assert_eq!(status.message(), grpc.message(), "{way}");
        same_status(&status, &grpc, &way);
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.reason, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
            "{way}"
        );
        assert_eq!(info.domain, "api.verihubs.com", "{way}");
        let request = details.request_info().expect("RequestInfo");
        assert_eq!(request.request_id, "web-req-404", "{way}");
        assert_eq!(answer.header("x-request-id"), Some("web-req-404"), "{way}");
        let resource = details.resource_info().expect("ResourceInfo");
        assert_eq!(resource.resource_name, "WEB-404", "{way}");
    }
    let page = app.scrape().await;
    let series = format!(
        r#"ktp_gateway_grpc_requests_total{{code="NOT_FOUND",method="{GET}",protocol="grpc_web"}} 4"#
    );
    assert!(page.contains(&series), "missing {series}\n{page}");
}

#[tokio::test]
async fn bearer_tokens_apply_to_grpc_web_calls() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "web-token-1 caller=console\n").unwrap();
    let app = TestApp::spawn_with(|s| s.auth.tokens_file = tokens_file(&tokens)).await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    // HTTP/1.1 only: a refusal comes before the request body is read, so
    // over HTTP/2 the server may reset the stream (NO_ERROR, RFC 9113 8.1)
    // while curl 7.x is still sending it, which curl reports as a failure
    // with no answer at all. The HTTP version plays no part in auth.
    for (http, content_type) in WAYS.into_iter().filter(|(http, _)| *http == Http::One) {
        let way = format!("{http:?} {content_type}");
        let refused = CurlRequest::web(http, app.addr, GET, content_type, &get("WEB-AUTH"))
            .send()
            .await;
        let status = trailer_status(&refused);
        assert_eq!(status.code(), Code::Unauthenticated, "{way}");
        let reason = status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone());
        assert_eq!(reason.as_deref(), Some("BEARER_TOKEN_MISSING"), "{way}");

        let served = CurlRequest::web(http, app.addr, GET, content_type, &get("WEB-AUTH"))
            .header("authorization", "Bearer web-token-1")
            .send()
            .await;
        let trailers = served.web().trailers.expect("a trailer frame");
        assert_eq!(trailers["grpc-status"], "0", "{way}: {served:?}");
    }
    let page = app.scrape().await;
    let series = format!(
        r#"ktp_gateway_caller_requests_total{{caller="console",code="OK",method="{GET}"}} 2"#
    );
    assert!(page.contains(&series), "missing {series}\n{page}");
}

const CONSOLE: &str = "https://console.example.com";

/// A preflight from `origin`, as a browser sends it before a gRPC-Web call.
async fn preflight(app: &TestApp, http: Http, origin: &str) -> CurlAnswer {
    CurlRequest {
        http,
        method: "OPTIONS",
        url: format!("http://{}{GET}", app.addr),
        headers: vec![
            ("origin", origin.to_owned()),
            ("access-control-request-method", "POST".to_owned()),
            (
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web,x-user-agent".to_owned(),
            ),
        ],
        body: Vec::new(),
    }
    .send()
    .await
}

/// A header's comma-separated values, sorted.
fn listed(answer: &CurlAnswer, name: &str) -> Vec<String> {
    let mut values: Vec<String> = answer
        .header(name)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    values.sort();
    values
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let app = TestApp::spawn_with(|s| {
        s.server.cors_allowed_origins =
            CorsOrigins::parse([CONSOLE, "http://localhost:5173"]).unwrap();
    })
    .await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for http in [Http::One, Http::Two] {
        let allowed = preflight(&app, http, CONSOLE).await;
        assert_eq!(allowed.status, 204, "{http:?}: {allowed:?}");
        assert_eq!(allowed.header("access-control-allow-origin"), Some(CONSOLE));
        assert_eq!(listed(&allowed, "access-control-allow-methods"), ["post"]);
        let mut headers = [
            "content-type",
            "connect-protocol-version",
            "connect-timeout-ms",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "authorization",
            "x-request-id",
        ];
        headers.sort_unstable();
        assert_eq!(listed(&allowed, "access-control-allow-headers"), headers);
        assert_eq!(allowed.header("access-control-max-age"), Some("7200"));
        assert_eq!(listed(&allowed, "vary"), ["origin"]);

        let other = preflight(&app, http, "https://evil.example.com").await;
        assert_eq!(other.cors_headers(), Vec::<String>::new(), "{other:?}");
        assert_ne!(other.status / 100, 2, "{http:?}: {other:?}");

        // The calls themselves.
        let call = |origin: &str| {
            CurlRequest::web(
                http,
                app.addr,
                GET,
                "application/grpc-web+proto",
                &get("WEB-CORS"),
            )
            .header("origin", origin)
            .send()
        };
        let answered = call(CONSOLE).await;
        assert_eq!(
            answered.header("access-control-allow-origin"),
            Some(CONSOLE)
        );
        let mut exposed = [
            "grpc-status",
            "grpc-message",
            "grpc-status-details-bin",
            "x-request-id",
        ];
        exposed.sort_unstable();
        assert_eq!(listed(&answered, "access-control-expose-headers"), exposed);
        assert_eq!(listed(&answered, "vary"), ["origin"]);
        assert_eq!(answered.web().messages.len(), 1);

        let elsewhere = call("https://evil.example.com").await;
        assert_eq!(elsewhere.cors_headers(), Vec::<String>::new());
        assert!(elsewhere.header("vary").is_none(), "{elsewhere:?}");
    }
}

#[tokio::test]
async fn without_allowed_origins_no_answer_carries_cors_headers() {
    let app = TestApp::spawn().await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    let refused = preflight(&app, Http::One, CONSOLE).await;
    assert_eq!(refused.cors_headers(), Vec::<String>::new(), "{refused:?}");
    let answered = CurlRequest::web(Http::One, app.addr, GET, "application/grpc-web", &get("X"))
        .header("origin", CONSOLE)
        .send()
        .await;
    assert_eq!(answered.cors_headers(), Vec::<String>::new());
}

#[tokio::test]
async fn over_tls_alpn_offers_both_http_versions() {
    let mut tls = None;
    let app = TestApp::spawn_with(|s| {
        tls = Some(self_signed_tls(s));
    })
    .await;
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    for (http, version) in [(Http::One, "HTTP/1.1"), (Http::Two, "HTTP/2")] {
        let mut request = CurlRequest::web(
            http,
            app.addr,
            GET,
            "application/grpc-web-text",
            &get("WEB-TLS"),
        );
        request.url = format!("https://{}{GET}", app.addr);
        let answer = request.header("x-request-id", "tls-1").send().await;
        assert_eq!(answer.version, version, "{answer:?}");
        let trailers = answer.web().trailers.expect("a trailer frame");
        assert_eq!(trailers["grpc-status"], "0");
    }
}
