//! `ExtractKtp`: submit, then wait, in one call, against jobs of the fake
//! upstream that finish after a delay. The result arrives as
//! `GetKtpResult`'s; a job error is `GetKtpResult`'s with the job's
//! `reference_id`; a wait that ends first is DEADLINE_EXCEEDED
//! `RESULT_NOT_READY` naming the job, which `GetKtpResult(wait = true)`
//! then finishes; submit errors are `SubmitKtp`'s, naming no job. Also the
//! metrics per method of all three RPCs.

use std::time::{Duration, Instant};

use ktp_testkit::fake_upstream::Reply;
use serde_json::json;
use tonic::Code;

use crate::helpers::{
    TestApp, expect_error, extract_request, millis, submit_request, valid_image, wait_millis,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

async fn app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.wait.poll_interval = millis(100);
        s.wait.max_poll_interval = millis(200);
    })
    .await
}

#[tokio::test]
async fn extract_returns_the_card_once_the_job_is_done() {
    let app = app().await;
    app.upstream.jobs_finish_after(MS(800));
    let started = Instant::now();
    let response = app
        .extract_with(extract_request(valid_image(), "EXTRACT-1"), |r| {
            r.set_timeout(Duration::from_secs(20));
            r.metadata_mut()
                .insert("x-request-id", "extract-req-1".parse().unwrap());
        })
        .await
        .expect("the card");
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "extract-req-1"
    );
    assert!(started.elapsed() >= MS(700), "{:?}", started.elapsed());
    let result = response.into_inner().result.expect("result");
    assert_eq!(
        (
            result.reference_id.as_str(),
            result.nik.as_str(),
            result.full_name.as_str()
        ),
        ("EXTRACT-1", "3506042602660001", "SULISTYONO")
    );
    assert_eq!(result.gender_value(), ktp_gateway::proto::Gender::Male);
    // One submit first, then polls until the job was done.
    let requests = app.upstream.requests();
    assert!(requests[0].is_submit(), "{requests:?}");
    assert_eq!(app.upstream.submits().len(), 1);
    let polls = app.upstream.result_times("EXTRACT-1");
    assert!(polls.len() >= 2, "{} polls", polls.len());
    assert!(requests[1..].iter().all(|r| !r.is_submit()));
}

#[tokio::test]
async fn extract_generates_one_reference_id_and_polls_it() {
    let app = app().await;
    app.upstream.jobs_finish_after(MS(300));
    let result = app
        .extract(extract_request(valid_image(), ""))
        .await
        .expect("the card")
        .into_inner()
        .result
        .expect("result");
    let id = result.reference_id;
    assert_eq!(id.len(), 36, "a UUID: {id:?}");
    let submitted = app.upstream.submits()[0].reference_id();
    assert_eq!(submitted.as_deref(), Some(id.as_str()));
    assert!(
        app.upstream
            .results()
            .iter()
            .all(|r| r.reference_id().as_deref() == Some(id.as_str()))
    );
}

#[tokio::test]
async fn extract_polls_the_id_the_upstream_named() {
    let app = app().await;
    app.upstream.on_submit(
        "MINE",
        Reply::Json(
            200,
            json!({"message": "success", "data": {"reference_id": "VENDOR-JOB-1"}}),
        ),
    );
    app.upstream.on(
        "VENDOR-JOB-1",
        Reply::Json(200, crate::helpers::sample_success()),
    );
    let result = app
        .extract(extract_request(valid_image(), "MINE"))
        .await
        .expect("the card")
        .into_inner()
        .result
        .expect("result");
    assert_eq!(result.reference_id, "VENDOR-JOB-1");
    assert_eq!(app.upstream.result_times("VENDOR-JOB-1").len(), 1);
    assert_eq!(app.upstream.result_times("MINE").len(), 0);
}

#[tokio::test]
async fn a_job_error_is_get_ktp_results_and_names_the_job() {
    let app = app().await;
    app.upstream.jobs_finish_after(MS(400));
    app.upstream.on(
        "BLURRED-1",
        Reply::Json(
            200,
            json!({"error_code": "FAIL_ON_1", "message": "fail on quality",
                   "data": {"image_quality": {"blur": true, "dark": false}}}),
        ),
    );
    let mut request = extract_request(valid_image(), "BLURRED-1");
    request.validate_quality = true;
    let e = expect_error(app.extract(request).await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::FailedPrecondition, "FAIL_ON_1", "api.verihubs.com")
    );
    assert_eq!(
        (e.meta("blur"), e.meta("dark"), e.meta("reference_id")),
        (Some("true"), Some("false"), Some("BLURRED-1"))
    );
    let body = app.upstream.submits()[0].json().expect("JSON");
    assert_eq!(body["validate_quality"], json!(true));
}

#[tokio::test]
async fn the_callers_deadline_ends_the_wait_with_result_not_ready_naming_the_job() {
    let app = app().await;
    app.upstream.jobs_finish_after(MS(3000));
    let started = Instant::now();
    let e = expect_error(
        app.extract_with(extract_request(valid_image(), "SLOWJOB-1"), |r| {
            r.set_timeout(MS(1500));
        })
        .await,
    );
    let elapsed = started.elapsed();
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::DeadlineExceeded, "RESULT_NOT_READY", "ktp-gateway"),
        "{}",
        e.message
    );
    assert_eq!(e.meta("reference_id"), Some("SLOWJOB-1"));
    let waited: u128 = e
        .meta("waited_ms")
        .and_then(|w| w.parse().ok())
        .expect("waited_ms");
    assert!(waited <= elapsed.as_millis(), "{waited} ms of {elapsed:?}");
    assert!(
        elapsed < MS(1500),
        "answered before the caller's deadline: {elapsed:?}"
    );

    // The job is not lost: the caller resumes with a waiting GetKtpResult.
    let r = app
        .wait_for("SLOWJOB-1", Some(Duration::from_secs(20)))
        .await
        .expect("the job's result, later")
        .into_inner();
    assert_eq!(r.reference_id, "SLOWJOB-1");
    assert_eq!(app.upstream.submits().len(), 1, "submitted once");
}

#[tokio::test]
async fn wait_max_wait_ends_an_extract_without_a_deadline() {
    let app = TestApp::spawn_with(|s| {
        s.wait.poll_interval = millis(100);
        s.wait.max_poll_interval = millis(100);
        s.wait.max_wait = wait_millis(1000);
    })
    .await;
    app.upstream.jobs_finish_after(Duration::from_secs(60));
    let started = Instant::now();
    let e = expect_error(
        app.extract(extract_request(valid_image(), "LONGJOB-1"))
            .await,
    );
    assert_eq!(
        (e.code, e.reason()),
        (Code::DeadlineExceeded, "RESULT_NOT_READY")
    );
    assert_eq!(e.meta("reference_id"), Some("LONGJOB-1"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.meta("waited_ms")
            .is_some_and(|w| w.parse::<u64>().is_ok_and(|w| w >= 500))
    );
}

#[tokio::test]
async fn submit_errors_are_submit_ktps_and_name_the_job() {
    let app = app().await;
    app.submit(submit_request(valid_image(), "TAKEN-1"))
        .await
        .expect("first submit");
    let e = expect_error(app.extract(extract_request(valid_image(), "TAKEN-1")).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::AlreadyExists, "INVALID_PAYLOAD_REFERENCE_ID_EXISTS")
    );
    assert_eq!(e.meta("reference_id"), Some("TAKEN-1"));
    assert_eq!(
        e.details.resource_info().map(|i| i.resource_name.as_str()),
        Some("TAKEN-1")
    );
    assert!(
        app.upstream.results().is_empty(),
        "no poll after a failed submit"
    );

    app.upstream.on_submit(
        "QUOTA-1",
        Reply::Json(403, json!({"error_code": "INSUFFICIENT_QUOTA"})),
    );
    let e = expect_error(app.extract(extract_request(valid_image(), "QUOTA-1")).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::ResourceExhausted, "INSUFFICIENT_QUOTA")
    );
    assert_eq!(e.meta("reference_id"), Some("QUOTA-1"));
}

#[tokio::test]
async fn an_upstream_failure_while_waiting_names_the_job() {
    let app = app().await;
    app.upstream.on("DOWN-1", Reply::Json(503, json!({})));
    let e = expect_error(app.extract(extract_request(valid_image(), "DOWN-1")).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Unavailable, "UPSTREAM_UNAVAILABLE")
    );
    assert_eq!(e.meta("reference_id"), Some("DOWN-1"));
    assert_eq!(e.retry_delay(), Some(Duration::from_secs(1)));
}

fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn each_rpc_is_counted_under_its_own_method() {
    let app = app().await;
    app.upstream.jobs_finish_after(MS(200));
    app.submit(submit_request(valid_image(), "SECRET_REF_S1"))
        .await
        .expect("submitted");
    let _ = app
        .submit(submit_request(
            ktp_testkit::images::ImageSource::None,
            "SECRET_REF_S2",
        ))
        .await
        .expect_err("no image");
    app.extract(extract_request(valid_image(), "SECRET_REF_E1"))
        .await
        .expect("extracted");
    app.wait_for("SECRET_REF_S1", Some(Duration::from_secs(10)))
        .await
        .expect("waited");
    let page = app.scrape().await;
    for (method, code, n) in [
        ("SubmitKtp", "OK", 1.0),
        ("SubmitKtp", "INVALID_ARGUMENT", 1.0),
        ("ExtractKtp", "OK", 1.0),
        ("GetKtpResult", "OK", 1.0),
    ] {
        let series = format!(
            r#"ktp_gateway_grpc_requests_total{{code="{code}",method="/ktp.v1.KtpService/{method}",protocol="grpc"}}"#
        );
        assert_eq!(value(&page, &series), Some(n), "{series}\n{page}");
    }
    // A call that waited for its job is timed apart from the others.
    for (histogram, method, n) in [
        ("request", "SubmitKtp", 2.0),
        ("wait", "ExtractKtp", 1.0),
        ("wait", "GetKtpResult", 1.0),
    ] {
        // The latency histogram tells protocols apart, the wait one not.
        let protocol = if histogram == "request" {
            r#",protocol="grpc""#
        } else {
            ""
        };
        let series = format!(
            r#"ktp_gateway_grpc_{histogram}_duration_seconds_count{{method="/ktp.v1.KtpService/{method}"{protocol}}}"#
        );
        assert_eq!(value(&page, &series), Some(n), "{series}");
    }
    assert_eq!(
        value(&page, "ktp_gateway_grpc_requests_in_flight"),
        Some(0.0)
    );
    assert!(
        !page.contains("SECRET_REF"),
        "a reference id in a label:\n{page}"
    );
}
