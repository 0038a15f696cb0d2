//! The Prometheus endpoint: every metric the README lists, with bounded labels.

use std::time::Duration;

use ktp_testkit::fake_upstream::Reply;
use serde_json::json;

use crate::helpers::{TestApp, attempts, count32, sample_success};

const METHOD: &str = "/ktp.v1.KtpService/GetKtpResult";

fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn calls_attempts_retries_coalescing_and_breaker_are_counted() {
    let app = TestApp::spawn_with(|s| s.upstream.breaker.failure_threshold = count32(1000)).await;
    app.upstream
        .on("SECRET_REF_OK", Reply::Json(200, sample_success()));
    app.upstream.on(
        "SECRET_REF_404",
        Reply::Json(
            404,
            json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
        ),
    );
    app.upstream.on(
        "SECRET_REF_FLAP",
        Reply::cycle(vec![
            Reply::Json(503, json!({})),
            Reply::Json(200, sample_success()),
        ]),
    );
    app.upstream.on(
        "SECRET_REF_SLOW",
        Reply::delayed(
            Duration::from_millis(300),
            Reply::Json(200, sample_success()),
        ),
    );
    app.call("SECRET_REF_OK").await.unwrap();
    let _ = app.call("SECRET_REF_404").await;
    app.call("SECRET_REF_FLAP").await.unwrap();
    let calls: Vec<_> = (0..3).map(|_| app.spawn_call("SECRET_REF_SLOW")).collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }

    let page = app.scrape().await;
    let ok = format!(
        r#"ktp_gateway_grpc_requests_total{{code="OK",method="{METHOD}",protocol="grpc"}}"#
    );
    let nf = format!(
        r#"ktp_gateway_grpc_requests_total{{code="NOT_FOUND",method="{METHOD}",protocol="grpc"}}"#
    );
    assert_eq!(value(&page, &ok), Some(5.0), "{page}");
    assert_eq!(value(&page, &nf), Some(1.0), "{page}");
    assert_eq!(
        value(
            &page,
            &format!(
                r#"ktp_gateway_grpc_request_duration_seconds_count{{method="{METHOD}",protocol="grpc"}}"#
            )
        ),
        Some(6.0)
    );
    assert_eq!(
        value(
            &page,
            r#"ktp_gateway_upstream_requests_total{http_status="200",outcome="success"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &page,
            r#"ktp_gateway_upstream_requests_total{http_status="404",outcome="http_error"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &page,
            r#"ktp_gateway_upstream_requests_total{http_status="503",outcome="http_error"}"#
        ),
        Some(1.0)
    );
    // OK, 404, two for the flap, one shared by the three slow callers.
    assert_eq!(
        value(&page, "ktp_gateway_upstream_request_duration_seconds_count"),
        Some(5.0)
    );
    assert_eq!(
        value(&page, "ktp_gateway_upstream_retries_total"),
        Some(1.0)
    );
    assert_eq!(
        value(&page, "ktp_gateway_coalesced_requests_total"),
        Some(2.0)
    );
    assert_eq!(
        value(&page, "ktp_gateway_grpc_requests_in_flight"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &page,
            r#"ktp_gateway_upstream_circuit_state{state="closed"}"#
        ),
        Some(1.0)
    );
    assert!(page.contains("ktp_gateway_build_info{version="), "{page}");
    assert!(
        !page.contains("SECRET_REF"),
        "a reference id leaked into a label:\n{page}"
    );
    assert!(!page.contains("3506042602660001") && !page.contains("SULISTYONO"));
}

#[tokio::test]
async fn an_open_circuit_shows_at_scrape_time() {
    let app = TestApp::spawn_with(|s| {
        s.upstream.retry.max_attempts = attempts(1);
        s.upstream.breaker.failure_threshold = count32(2);
    })
    .await;
    app.upstream.on("DOWN", Reply::Json(503, json!({})));
    let _ = app.call("DOWN").await;
    let _ = app.call("DOWN").await;
    let page = app.scrape().await;
    assert_eq!(
        value(&page, r#"ktp_gateway_upstream_circuit_state{state="open"}"#),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        value(
            &page,
            r#"ktp_gateway_upstream_circuit_state{state="closed"}"#
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn calls_in_flight_show_at_scrape_time() {
    let app = TestApp::spawn().await;
    app.upstream.on("HANG", Reply::Hang);
    let _hung = app.spawn_call("HANG");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        value(&app.scrape().await, "ktp_gateway_grpc_requests_in_flight"),
        Some(1.0)
    );
}
