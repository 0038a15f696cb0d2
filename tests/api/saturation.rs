//! The gateway's own saturation is not the upstream's fault (issue 10,
//! point 2): a call that cannot get one of the `upstream.max_connections`
//! slots in time answers RESOURCE_EXHAUSTED `OVERLOADED`, and is neither a
//! breaker failure, nor an upstream attempt, nor upstream latency.

use std::time::Duration;

use tonic::Code;

use ktp_testkit::fake_upstream::Reply;

use crate::helpers::{TestApp, count, expect_error, sample_success, secs};

/// The value of the metric line that starts with `series` (0 when absent).
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn calls_that_get_no_upstream_slot_are_overloaded_not_upstream_timeouts() {
    let app = TestApp::spawn_with(|s| {
        s.upstream.max_connections = count(2);
        s.upstream.timeout = secs(1);
    })
    .await;
    app.upstream.otherwise(Reply::delayed(
        Duration::from_secs(3),
        Reply::Json(200, sample_success()),
    ));
    app.upstream
        .on("HEALTHY", Reply::Json(200, sample_success()));
    // Distinct ids, so coalescing cannot merge them.
    let calls: Vec<_> = (0..20)
        .map(|i| app.spawn_call(&format!("SATURATED_{i}")))
        .collect();
    let (mut timeouts, mut overloaded) = (0, 0);
    for call in calls {
        let e = expect_error(call.await.expect("call task"));
        match (e.code, e.reason(), e.domain()) {
            (Code::Unavailable, "UPSTREAM_TIMEOUT", "ktp-gateway") => timeouts += 1,
            (Code::ResourceExhausted, "OVERLOADED", "ktp-gateway") => {
                assert_eq!(e.meta("limit"), Some("2"), "upstream.max_connections");
                assert!(e.retry_delay().is_none(), "not UNAVAILABLE: no RetryInfo");
                overloaded += 1;
            }
            other => panic!("unexpected answer {other:?}: {}", e.message),
        }
    }
    assert!(timeouts <= 2, "{timeouts} upstream timeouts");
    assert_eq!(timeouts + overloaded, 20);
    assert!(
        app.upstream.requests().len() <= 2,
        "only the slots' requests were sent"
    );

    // Not an upstream attempt, not upstream latency.
    let scrape = app.scrape().await;
    let attempts: f64 = scrape
        .lines()
        .filter(|l| l.starts_with("ktp_gateway_upstream_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(attempts <= 2.0, "{attempts} attempts counted\n{scrape}");
    let timed = value(
        &scrape,
        "ktp_gateway_upstream_request_duration_seconds_count",
    );
    assert!(timed <= 2.0, "{timed} attempts in the latency histogram");

    // Not breaker failures: the circuit is still closed.
    let ok = app.call("HEALTHY").await.expect("a healthy id right after");
    assert_eq!(ok.into_inner().full_name, "SULISTYONO");
}
