//! Retries, retry budget, circuit breaker, overload shedding, coalescing and
//! the upstream connection cap, each against a scripted fake upstream.

use std::time::{Duration, Instant};

use serde_json::json;
use tonic::Code;

use ktp_gateway::proto::{GetKtpResultRequest, ktp_service_client::KtpServiceClient};
use ktp_testkit::fake_upstream::Reply;

use crate::helpers::{
    TestApp, assert_serving, attempts, channel, count, count32, expect_error, millis, per_second,
    ratio, sample_success,
};

fn unavailable() -> Reply {
    Reply::Json(503, json!({"message": "Service Unavailable"}))
}

fn slow_success(ms: u64) -> Reply {
    Reply::delayed(
        Duration::from_millis(ms),
        Reply::Json(200, sample_success()),
    )
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "FLAP",
        Reply::cycle(vec![
            unavailable(),
            Reply::Close,
            Reply::Json(200, sample_success()),
        ]),
    );
    let r = app
        .call("FLAP")
        .await
        .expect("third attempt succeeds")
        .into_inner();
    assert_eq!(r.full_name, "SULISTYONO");
    assert_eq!(app.upstream.requests().len(), 3);
}

#[tokio::test]
async fn at_most_three_attempts_then_the_last_error() {
    let app = TestApp::spawn().await;
    app.upstream.on("DOWN", unavailable());
    let e = expect_error(app.call("DOWN").await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE")
    );
    assert_eq!(app.upstream.requests().len(), 3);
}

#[tokio::test]
async fn non_transient_answers_are_never_retried() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "R400",
            Reply::Json(400, json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID"})),
        ),
        (
            "R401",
            Reply::Json(401, json!({"message": "Authorization failed"})),
        ),
        (
            "R403",
            Reply::Json(403, json!({"error_code": "INSUFFICIENT_QUOTA"})),
        ),
        (
            "R404",
            Reply::Json(
                404,
                json!({"error_code": "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"}),
            ),
        ),
        ("R501", Reply::Json(501, json!({}))),
        (
            "RJOB",
            Reply::Json(200, json!({"data": {}, "error_code": "KTP_NOT_DETECTED"})),
        ),
        (
            "RJOB500",
            Reply::Json(200, json!({"error_code": "INTERNAL_SERVER_ERROR"})),
        ),
        ("RBAD", Reply::raw(200, &[], "not json")),
    ];
    for (id, reply) in cases {
        app.upstream.on(id, reply);
        let before = app.upstream.requests().len();
        let _ = app.call(id).await;
        assert_eq!(
            app.upstream.requests().len() - before,
            1,
            "{id} was retried"
        );
    }
}

#[tokio::test]
async fn upstream_timeouts_are_not_retried() {
    let app = TestApp::spawn_with(|s| s.upstream.timeout = millis(200)).await;
    app.upstream.on("SLOW", Reply::Hang);
    let e = expect_error(app.call("SLOW").await);
    assert_eq!(e.reason(), "UPSTREAM_TIMEOUT");
    assert_eq!(app.upstream.requests().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_and_a_long_one_is_passed_to_the_caller() {
    let app = TestApp::spawn().await;
    app.upstream.on(
        "SHORT",
        Reply::cycle(vec![
            Reply::raw(429, &[("Retry-After", "0")], "{}"),
            Reply::Json(200, sample_success()),
        ]),
    );
    app.call("SHORT")
        .await
        .expect("retried after Retry-After: 0");
    assert_eq!(app.upstream.requests().len(), 2);

    // Longer than the 1 s backoff cap: not waited out here; the caller
    // gets the delay in RetryInfo instead.
    app.upstream
        .on("LONG", Reply::raw(429, &[("Retry-After", "5")], "{}"));
    let started = Instant::now();
    let e = expect_error(app.call("LONG").await);
    assert_eq!(e.reason(), "UPSTREAM_RATE_LIMITED");
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(5)));
    assert_eq!(app.upstream.requests().len(), 3, "one attempt for LONG");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn retries_never_run_past_the_callers_deadline() {
    let app = TestApp::spawn().await;
    app.upstream
        .on("SOON", Reply::raw(503, &[("Retry-After", "1")], "{}"));
    let started = Instant::now();
    let e = expect_error(
        app.call_with("SOON", |r| r.set_timeout(Duration::from_millis(400)))
            .await,
    );
    // The 1 s wait would end past the 400 ms deadline: no retry, the real
    // error at once rather than a DEADLINE_EXCEEDED later.
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE")
    );
    assert_eq!(app.upstream.requests().len(), 1);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn an_empty_retry_budget_stops_retries() {
    let app = TestApp::spawn_with(|s| {
        s.upstream.retry.budget_ratio = ratio(0.0);
        s.upstream.retry.budget_min_per_sec = per_second(0.0);
        s.upstream.breaker.failure_threshold = count32(1000);
    })
    .await;
    app.upstream.on("DOWN", unavailable());
    for _ in 0..5 {
        let _ = app.call("DOWN").await;
    }
    assert_eq!(
        app.upstream.requests().len(),
        5,
        "no retries without budget"
    );
}

#[tokio::test]
async fn the_retry_budget_caps_a_retry_storm() {
    // Floor of 1 retry/s (10 banked), 20 % of requests: 50 failing calls may
    // retry about 10 + 10 times, not 100.
    let app = TestApp::spawn_with(|s| {
        s.upstream.retry.budget_min_per_sec = per_second(1.0);
        s.upstream.retry.base_backoff = millis(1);
        s.upstream.retry.max_backoff = millis(2);
        s.upstream.breaker.failure_threshold = count32(1000);
    })
    .await;
    app.upstream.on("DOWN", unavailable());
    for _ in 0..50 {
        let _ = app.call("DOWN").await;
    }
    let requests = app.upstream.requests().len();
    assert!(
        (50..=80).contains(&requests),
        "{requests} upstream requests for 50 calls"
    );
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let app = TestApp::spawn_with(|s| {
        s.upstream.retry.max_attempts = attempts(1);
        s.upstream.breaker.failure_threshold = count32(3);
        s.upstream.breaker.cooldown = millis(800);
    })
    .await;
    app.upstream.on("X", unavailable());
    for _ in 0..3 {
        assert_eq!(
            expect_error(app.call("X").await).reason(),
            "UPSTREAM_UNAVAILABLE"
        );
    }
    let e = expect_error(app.call("X").await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "UPSTREAM_CIRCUIT_OPEN", "ktp-gateway")
    );
    let wait = e.retry_delay().expect("RetryInfo");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_millis(800),
        "{wait:?}"
    );
    assert_eq!(
        app.upstream.requests().len(),
        3,
        "fails fast without calling upstream"
    );

    // Liveness and readiness stay SERVING while the circuit is open.
    assert_serving(app.addr).await;

    tokio::time::sleep(Duration::from_millis(900)).await;
    app.upstream.on("X", Reply::Json(200, sample_success()));
    app.call("X")
        .await
        .expect("the probe goes through and succeeds");
    app.call("X").await.expect("closed again");
    assert_eq!(app.upstream.requests().len(), 5);
}

#[tokio::test]
async fn past_the_in_flight_cap_calls_are_shed_at_once() {
    let app = TestApp::spawn_with(|s| s.server.max_in_flight = Some(count(2))).await;
    app.upstream.on("A", slow_success(600));
    app.upstream.on("B", slow_success(600));
    app.upstream.otherwise(Reply::Json(200, sample_success()));
    // Each call on its own connection: the cap is process-wide, not per connection.
    let call_on_own_connection = |id: &'static str| {
        let addr = app.addr;
        tokio::spawn(async move {
            let mut client = KtpServiceClient::new(channel(addr).await);
            client
                .get_ktp_result(GetKtpResultRequest {
                    read_mask: None,
                    reference_id: id.into(),
                    wait: false,
                })
                .await
        })
    };
    let a = call_on_own_connection("A");
    let b = call_on_own_connection("B");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let e = expect_error(call_on_own_connection("C").await.unwrap());
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::ResourceExhausted, "OVERLOADED", "ktp-gateway")
    );
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "shed at once, not queued"
    );
    a.await.unwrap().expect("A completes");
    b.await.unwrap().expect("B completes");
    app.call("C").await.expect("capacity is back");
}

#[tokio::test]
async fn concurrent_calls_for_one_id_share_one_upstream_request() {
    let app = TestApp::spawn().await;
    app.upstream.on("SAME", slow_success(300));
    let calls: Vec<_> = (0..10).map(|_| app.spawn_call("SAME")).collect();
    for call in calls {
        let r = call
            .await
            .unwrap()
            .expect("each caller gets the answer")
            .into_inner();
        assert_eq!(r.nik, "3506042602660001");
    }
    assert_eq!(app.upstream.requests().len(), 1);
}

#[tokio::test]
async fn a_coalesced_caller_keeps_its_own_deadline() {
    let app = TestApp::spawn().await;
    app.upstream.on("SAME", slow_success(600));
    let patient = app.spawn_call("SAME");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = expect_error(
        app.call_with("SAME", |r| r.set_timeout(Duration::from_millis(200)))
            .await,
    );
    assert_eq!(e.code, Code::DeadlineExceeded);
    patient
        .await
        .unwrap()
        .expect("the patient caller still gets the answer");
    assert_eq!(app.upstream.requests().len(), 1);
}

#[tokio::test]
async fn coalescing_can_be_switched_off() {
    let app = TestApp::spawn_with(|s| s.upstream.coalesce = false).await;
    app.upstream.on("SAME", slow_success(200));
    let calls: Vec<_> = (0..4).map(|_| app.spawn_call("SAME")).collect();
    for call in calls {
        call.await.unwrap().expect("OK");
    }
    assert_eq!(app.upstream.requests().len(), 4);
}

#[tokio::test]
async fn upstream_connections_are_capped() {
    let app = TestApp::spawn_with(|s| s.upstream.max_connections = count(2)).await;
    app.upstream.otherwise(slow_success(150));
    let calls: Vec<_> = (0..6).map(|i| app.spawn_call(&format!("ID_{i}"))).collect();
    for call in calls {
        call.await.unwrap().expect("every call is served, in turn");
    }
    assert_eq!(app.upstream.requests().len(), 6);
    assert_eq!(app.upstream.max_concurrent_requests(), 2);
    assert!(
        app.upstream.connections() <= 2,
        "{} connections",
        app.upstream.connections()
    );
}
