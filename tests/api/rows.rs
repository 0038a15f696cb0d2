//! One test per row of the error table (README "Error mapping").

use std::time::Duration;

use ktp_gateway::proto::{BloodType, Gender, MaritalStatus, Nationality, Religion};
use ktp_testkit::fake_upstream::Reply;
use serde_json::json;
use tonic::Code;

use ktp_gateway::config::Settings;

use crate::helpers::{
    TestApp, base_url, count32, expect_error, message_bytes, millis, sample_success,
};

const UPSTREAM: &str = "api.verihubs.com";
const GATEWAY: &str = "ktp-gateway";
/// Many failures in a row must not open the breaker.
fn no_breaker(s: &mut Settings) {
    s.upstream.breaker.failure_threshold = count32(1000);
}

#[tokio::test]
async fn ok_200_with_data_returns_every_field_raw_and_typed() {
    let app = TestApp::spawn().await;
    app.upstream
        .on("REF_OK", Reply::Json(200, sample_success()));
    let response = app.call("REF_OK").await.expect("OK");
    assert!(response.metadata().get("x-request-id").is_some());
    let r = response.into_inner();
    assert_eq!(r.reference_id, "REF_OK");
    assert_eq!(r.message, "success extract ktp data");
    assert_eq!(r.status_code, "");
    assert_eq!(r.nik, "3506042602660001");
    assert_eq!(r.full_name, "SULISTYONO");
    assert_eq!(r.place_of_birth, "KEDIRI");
    assert_eq!(r.date_of_birth, "26-02-1966");
    assert_eq!(r.gender, "LAKI-LAKI");
    assert_eq!(r.blood_type, "-");
    assert_eq!(r.address, "JL.AYYA DSN PURWOKERTO");
    assert_eq!(r.rt_rw, "002/003");
    assert_eq!(r.administrative_village, "PURWOKERTO");
    assert_eq!(r.district, "NGADILUWIH");
    assert_eq!(r.city, "KABUPATEN KEDIRI");
    assert_eq!(r.state, "PROVINSI JAWA TIMUR");
    assert_eq!(r.religion, "ISLAM");
    assert_eq!(r.marital_status, "KAWIN");
    assert_eq!(r.occupation, "GURU");
    assert_eq!(r.nationality, "WNI");
    let q = r.image_quality.expect("image_quality");
    assert!(!q.blur && !q.dark && !q.flashlight && !q.grayscale);
    assert_eq!(r.gender_value(), Gender::Male);
    assert_eq!(r.blood_type_value(), BloodType::NotStated);
    assert_eq!(r.religion_value(), Religion::Islam);
    assert_eq!(r.marital_status_value(), MaritalStatus::Married);
    assert_eq!(r.nationality_value(), Nationality::Indonesian);
    let dob = r.date_of_birth_value.expect("date");
    assert_eq!((dob.year, dob.month, dob.day), (1966, 2, 26));
}

#[tokio::test]
async fn ok_tolerates_nulls_missing_fields_unknown_fields_and_billing_inside_data() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_SPARSE",
        Reply::Json(
            200,
            json!({"data": {"nik": null, "full_name": "", "gender": "PEREMPUAN", "status_code": "BILL_1",
                             "reference_id": "REF_SPARSE", "brand_new": {"nested": [1, 2]}},
                   "trace": "x"}),
        ),
    );
    let r = app.call("REF_SPARSE").await.expect("OK").into_inner();
    assert_eq!(r.nik, "");
    assert_eq!(r.full_name, "");
    assert_eq!(r.status_code, "BILL_1");
    assert_eq!(r.gender_value(), Gender::Female);
    assert!(r.image_quality.is_none());
    assert!(r.date_of_birth_value.is_none());
    assert_eq!(r.religion_value(), Religion::Unspecified);
}

#[tokio::test]
async fn job_error_fail_on_1_is_failed_precondition_with_flags() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_Q",
        Reply::Json(
            200,
            json!({"data": {"image_quality": {"blur": true, "dark": false, "flashlight": true, "grayscale": false}},
                   "error_code": "FAIL_ON_1", "message": "fail on quality"}),
        ),
    );
    let e = expect_error(app.call("REF_Q").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::FailedPrecondition, "FAIL_ON_1", UPSTREAM)
    );
    assert_eq!(e.meta("blur"), Some("true"));
    assert_eq!(e.meta("dark"), Some("false"));
    assert_eq!(e.meta("flashlight"), Some("true"));
    assert_eq!(e.meta("grayscale"), Some("false"));
    assert_eq!(e.meta("upstream_http_status"), Some("200"));

    // Without flags the metadata simply has none.
    app.upstream.on(
        "REF_Q2",
        Reply::Json(200, json!({"data": {}, "error_code": "FAIL_ON_1"})),
    );
    let e = expect_error(app.call("REF_Q2").await);
    assert_eq!(e.code, Code::FailedPrecondition);
    assert_eq!(e.meta("blur"), None);
}

#[tokio::test]
async fn job_error_ktp_not_detected_is_failed_precondition() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_ND",
        Reply::Json(
            200,
            json!({"data": {}, "error_code": "KTP_NOT_DETECTED", "message": "ktp not detected"}),
        ),
    );
    let e = expect_error(app.call("REF_ND").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::FailedPrecondition, "KTP_NOT_DETECTED", UPSTREAM)
    );
}

#[tokio::test]
async fn job_error_internal_server_error_is_internal() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_IE",
        Reply::Json(
            200,
            json!({"error_code": "INTERNAL_SERVER_ERROR", "message": "x"}),
        ),
    );
    let e = expect_error(app.call("REF_IE").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Internal, "INTERNAL_SERVER_ERROR", UPSTREAM)
    );
}

#[tokio::test]
async fn job_error_unknown_code_is_unknown_with_code_as_given() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_NEW",
        Reply::Json(200, json!({"data": {}, "error_code": "FAIL_ON_2"})),
    );
    let e = expect_error(app.call("REF_NEW").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unknown, "FAIL_ON_2", UPSTREAM)
    );
}

#[tokio::test]
async fn upstream_400_invalid_reference_id_is_invalid_argument_with_bad_request() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_400",
        Reply::Json(
            400,
            json!({"message": "too long", "error_code": "INVALID_PAYLOAD_REFERENCE_ID"}),
        ),
    );
    let e = expect_error(app.call("REF_400").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (
            Code::InvalidArgument,
            "INVALID_PAYLOAD_REFERENCE_ID",
            UPSTREAM
        )
    );
    assert_eq!(e.meta("upstream_http_status"), Some("400"));
    let bad = e.details.bad_request().expect("BadRequest");
    assert_eq!(bad.field_violations[0].field, "reference_id");
}

#[tokio::test]
async fn local_validation_failures_never_reach_upstream() {
    let app = TestApp::spawn().await;
    let too_long = "R".repeat(129);
    for (id, constraint) in [
        ("", "required"),
        ("   ", "not_blank"),
        (too_long.as_str(), "max_length"),
        ("REF\n1", "no_control_characters"),
        ("REF\u{0}", "no_control_characters"),
    ] {
        let e = expect_error(app.call(id).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::InvalidArgument, "INVALID_REFERENCE_ID", GATEWAY)
        );
        assert_eq!(e.meta("constraint"), Some(constraint), "{id:?}");
        assert_eq!(e.meta("upstream_http_status"), None);
        let bad = e.details.bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "reference_id");
        assert!(!bad.field_violations[0].description.is_empty());
    }
    assert!(
        app.upstream.requests().is_empty(),
        "no upstream call for invalid ids"
    );
    // 128 bytes is still fine.
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    app.call(&"R".repeat(128))
        .await
        .expect("128 bytes accepted");
}

#[tokio::test]
async fn upstream_401_is_internal_auth_failed() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_401",
        Reply::Json(401, json!({"message": "Authorization failed"})),
    );
    app.upstream.on(
        "REF_401B",
        Reply::Json(
            401,
            json!({"message": "Authorization failed", "error_code": "UNAUTHORIZED"}),
        ),
    );
    let e = expect_error(app.call("REF_401").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Internal, "UPSTREAM_AUTH_FAILED", GATEWAY)
    );
    assert_eq!(e.meta("upstream_http_status"), Some("401"));
    let e = expect_error(app.call("REF_401B").await);
    assert_eq!(e.reason(), "UPSTREAM_AUTH_FAILED");
    assert_eq!(e.meta("upstream_error_code"), Some("UNAUTHORIZED"));
}

#[tokio::test]
async fn upstream_403_insufficient_quota_is_resource_exhausted_with_quota_failure() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "REF_403",
        Reply::Json(
            403,
            json!({"error_code": "INSUFFICIENT_QUOTA", "message": "q"}),
        ),
    );
    let e = expect_error(app.call("REF_403").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::ResourceExhausted, "INSUFFICIENT_QUOTA", UPSTREAM)
    );
    assert_eq!(e.meta("upstream_http_status"), Some("403"));
    assert!(
        !e.details
            .quota_failure()
            .expect("QuotaFailure")
            .violations
            .is_empty()
    );
}

#[tokio::test]
async fn upstream_404_is_not_found_with_resource_info() {
    let app = TestApp::spawn().await;
    // The fake upstream's default answer is the documented 404.
    let e = expect_error(app.call("REF_MISSING").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (
            Code::NotFound,
            "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
            UPSTREAM
        )
    );
    assert_eq!(e.meta("upstream_http_status"), Some("404"));
    let info = e.details.resource_info().expect("ResourceInfo");
    assert_eq!(info.resource_name, "REF_MISSING");
    assert!(!info.resource_type.is_empty());
}

#[tokio::test]
async fn upstream_429_is_unavailable_rate_limited_with_retry_after() {
    let app = TestApp::spawn().await;
    app.upstream
        .on("REF_429", Reply::raw(429, &[("Retry-After", "7")], "{}"));
    app.upstream.on(
        "REF_429_NO_HEADER",
        Reply::raw(429, &[], "Too Many Requests"),
    );
    let e = expect_error(app.call("REF_429").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "UPSTREAM_RATE_LIMITED", GATEWAY)
    );
    assert_eq!(e.meta("upstream_http_status"), Some("429"));
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(7)));
    let e = expect_error(app.call("REF_429_NO_HEADER").await);
    assert_eq!(e.reason(), "UPSTREAM_RATE_LIMITED");
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn upstream_5xx_is_unavailable_with_the_upstream_code_when_given() {
    // Many failures in a row: keep the breaker out of this row's way
    // (tests/api/resilience.rs covers it).
    let app = TestApp::spawn_with(no_breaker).await;
    for status in [500u16, 502, 503, 504] {
        let bare = format!("REF_{status}");
        let coded = format!("REF_{status}_CODED");
        app.upstream.on(
            &bare,
            Reply::raw(
                status,
                &[("Content-Type", "text/html")],
                "<html>down</html>",
            ),
        );
        app.upstream.on(
            &coded,
            Reply::Json(
                status,
                json!({"message": "Internal server error", "error_code": "INTERNAL_SERVER_ERROR"}),
            ),
        );
        let e = expect_error(app.call(&bare).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Unavailable, "UPSTREAM_UNAVAILABLE", GATEWAY)
        );
        assert_eq!(
            e.meta("upstream_http_status"),
            Some(status.to_string().as_str())
        );
        assert!(e.retry_delay().is_some(), "RetryInfo for {status}");
        let e = expect_error(app.call(&coded).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Unavailable, "INTERNAL_SERVER_ERROR", UPSTREAM)
        );
        assert!(e.retry_delay().is_some());
    }
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    // A port that was just free: bind, learn it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|s| s.upstream.base_url = base_url(&base)).await;
    let e = expect_error(app.call("REF_ANY").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE", GATEWAY)
    );
    assert_eq!(e.meta("upstream_http_status"), None);
    assert!(e.retry_delay().is_some());
}

#[tokio::test]
async fn connection_reset_or_cut_is_unavailable() {
    // Many failures in a row: keep the breaker out of this row's way
    // (tests/api/resilience.rs covers it).
    let app = TestApp::spawn_with(no_breaker).await;
    app.upstream.on("REF_CLOSE", Reply::Close);
    app.upstream.on("REF_CUT", Reply::CutMidBody);
    for (id, http_status) in [("REF_CLOSE", None), ("REF_CUT", Some("200"))] {
        let e = expect_error(app.call(id).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Unavailable, "UPSTREAM_UNAVAILABLE", GATEWAY),
            "{id}"
        );
        assert!(e.retry_delay().is_some());
        assert_eq!(e.meta("upstream_http_status"), http_status, "{id}");
    }
}

#[tokio::test]
async fn an_oversized_error_page_does_not_hide_the_status() {
    let app = TestApp::spawn_with(|s| {
        s.upstream.max_body_bytes = message_bytes(1024);
        no_breaker(s);
    })
    .await;
    let page = format!("<html>{}</html>", "x".repeat(10_000));
    app.upstream.on(
        "BIG_503",
        Reply::raw(503, &[("Retry-After", "1")], page.clone()),
    );
    app.upstream
        .on("BIG_429", Reply::raw(429, &[("Retry-After", "9")], page));
    let e = expect_error(app.call("BIG_503").await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE")
    );
    assert_eq!(e.meta("upstream_http_status"), Some("503"));
    let e = expect_error(app.call("BIG_429").await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_RATE_LIMITED")
    );
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(9)));
}

#[tokio::test]
async fn undocumented_400_and_404_codes_are_not_blamed_on_the_caller() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "R400",
        Reply::Json(400, json!({"error_code": "INVALID_PAYLOAD"})),
    );
    app.upstream.on(
        "R404",
        Reply::Json(404, json!({"error_code": "ROUTE_NOT_FOUND"})),
    );
    for id in ["R400", "R404"] {
        let e = expect_error(app.call(id).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Internal, "UPSTREAM_BAD_RESPONSE", GATEWAY),
            "{id}"
        );
        assert!(e.meta("upstream_error_code").is_some(), "{id}");
    }
    app.upstream.on(
        "SANDBOX",
        Reply::Json(400, json!({"error_code": "INVALID_SANDBOX_CODE"})),
    );
    let e = expect_error(app.call("SANDBOX").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::InvalidArgument, "INVALID_SANDBOX_CODE", UPSTREAM)
    );
}

#[tokio::test]
async fn upstream_slower_than_timeout_is_unavailable_timeout() {
    let app = TestApp::spawn_with(|s| s.upstream.timeout = millis(300)).await;
    app.upstream.on(
        "REF_SLOW",
        Reply::delayed(Duration::from_secs(5), Reply::Json(200, sample_success())),
    );
    app.upstream.on("REF_HANG", Reply::Hang);
    let started = std::time::Instant::now();
    let e = expect_error(app.call("REF_SLOW").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "UPSTREAM_TIMEOUT", GATEWAY)
    );
    assert!(e.retry_delay().is_some());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered well before the 5 s upstream"
    );
    let e = expect_error(app.call("REF_HANG").await);
    assert_eq!(e.reason(), "UPSTREAM_TIMEOUT");
}

#[tokio::test]
async fn bad_bodies_and_unexpected_statuses_are_internal_bad_response() {
    let app = TestApp::spawn_with(|s| s.upstream.max_body_bytes = message_bytes(4096)).await;
    let big = format!(r#"{{"data": {{"nik": "{}"}}}}"#, "9".repeat(5000));
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "REF_HTML",
            Reply::raw(200, &[("Content-Type", "text/html")], "<html/>"),
            "not_json",
        ),
        ("REF_EMPTY", Reply::raw(200, &[], ""), "not_json"),
        (
            "REF_UTF8",
            Reply::raw(200, &[], b"{\"data\":{\"nik\":\"\xff\"}}".to_vec()),
            "not_json",
        ),
        (
            "REF_ARRAY",
            Reply::Json(200, json!([1, 2])),
            "not_an_object",
        ),
        (
            "REF_TYPES",
            Reply::Json(200, json!({"data": {"nik": 3506042602660001u64}})),
            "wrong_shape",
        ),
        (
            "REF_NODATA",
            Reply::Json(200, json!({"message": "ok"})),
            "no_data",
        ),
        ("REF_BIG", Reply::raw(200, &[], big.clone()), "too_large"),
        (
            "REF_BIG_CHUNKED",
            Reply::raw(
                200,
                &[("Transfer-Encoding", "chunked")],
                format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len()),
            ),
            "too_large",
        ),
    ];
    for (id, reply, problem) in cases {
        app.upstream.on(id, reply);
        let e = expect_error(app.call(id).await);
        assert_eq!(
            (e.code, e.reason(), e.domain()),
            (Code::Internal, "UPSTREAM_BAD_RESPONSE", GATEWAY),
            "{id}"
        );
        assert_eq!(e.meta("problem"), Some(problem), "{id}");
        assert!(
            !e.message.contains("999") && !e.message.contains("3506042602660001"),
            "{id}: body leaked"
        );
        assert_eq!(e.meta("upstream_http_status"), Some("200"), "{id}");
    }
    for status in [302u16, 404, 418, 501] {
        let id = format!("REF_STATUS_{status}");
        app.upstream.on(
            &id,
            Reply::raw(status, &[("Location", "http://elsewhere/")], ""),
        );
        let e = expect_error(app.call(&id).await);
        assert_eq!(
            (e.code, e.reason()),
            (Code::Internal, "UPSTREAM_BAD_RESPONSE"),
            "HTTP {status}"
        );
        assert_eq!(
            e.meta("upstream_http_status"),
            Some(status.to_string().as_str())
        );
    }
    // Redirects are not followed (they would carry the API key elsewhere).
    assert!(
        app.upstream
            .requests()
            .iter()
            .all(|r| r.path == "/ktp/id/extract-async/result")
    );
    // And the gateway still answers normally afterwards.
    app.upstream
        .on("REF_FINE", Reply::Json(200, sample_success()));
    app.call("REF_FINE")
        .await
        .expect("normal call after hostile bodies");
}
