//! `GetKtpResult` with `wait = true` against jobs of the fake upstream that
//! finish after a delay: polls until the job is done, at growing pauses;
//! concurrent waiters share each poll; a waiter that goes away stops its
//! polling; the wait ends with NOT_FOUND and `waited_ms`, bounded by the
//! caller's deadline and by `wait.max_wait`; `wait = false` is unchanged.
//! Timing bounds are generous (the machine is shared): a poll never comes
//! before its pause, and counts are compared with what the other behaviour
//! would give, never with a stopwatch.

use std::time::{Duration, Instant};

use ktp_testkit::fake_upstream::Reply;
use serde_json::json;
use tonic::Code;

use ktp_gateway::config::{FirstPoll, PositiveDuration, Settings};

use ktp_gateway::proto::GetKtpResultRequest;

use crate::helpers::{
    TestApp, count, expect_error, extract_request, millis, sample_success, secs, submit_request,
    valid_image, wait_millis,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// Pauses between consecutive times.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A gateway polling every `first` at first, at most every `max`.
/// `extra` changes other settings.
async fn waiting_app(
    first: PositiveDuration,
    max: PositiveDuration,
    extra: impl FnOnce(&mut Settings),
) -> TestApp {
    TestApp::spawn_with(|s| {
        s.wait.poll_interval = first;
        s.wait.max_poll_interval = max;
        extra(s);
    })
    .await
}

#[tokio::test]
async fn a_wait_polls_until_the_job_is_done_at_growing_pauses_up_to_the_cap() {
    let app = waiting_app(millis(100), millis(400), |_| {}).await;
    app.upstream.jobs_finish_after(MS(6000));
    app.submit(submit_request(valid_image(), "JOB-1"))
        .await
        .expect("submitted");
    let started = Instant::now();
    let r = app
        .wait_for("JOB-1", Some(Duration::from_secs(30)))
        .await
        .expect("the job's result")
        .into_inner();
    let elapsed = started.elapsed();
    assert!(elapsed >= MS(5500), "{elapsed:?}");
    assert_eq!(
        (r.reference_id.as_str(), r.full_name.as_str()),
        ("JOB-1", "SULISTYONO")
    );

    let times = app.upstream.result_times("JOB-1");
    let gaps = gaps(&times);
    // 100, 150, 225, 337.5, then 400 ms each: a pause is never shorter
    // (a busy machine only makes it longer).
    let mut pause = 100.0f64;
    for (i, gap) in gaps.iter().enumerate() {
        assert!(
            gap.as_secs_f64() * 1000.0 >= pause - 2.0,
            "pause {i} was {gap:?}, shorter than {pause} ms: {gaps:?}"
        );
        pause = (pause * 1.5).min(400.0);
    }
    // The cap: growing on without it, the pauses (100 ms × 1.5ⁿ) would
    // allow only this many polls in the whole wait, however fast the
    // machine; capped at 400 ms there are about 16.
    let mut uncapped = 0;
    let (mut at, mut pause) = (0.0f64, 100.0f64);
    while at <= elapsed.as_secs_f64() * 1000.0 {
        uncapped += 1;
        at += pause;
        pause *= 1.5;
    }
    assert!(
        times.len() >= uncapped + 2,
        "{} polls, no more than growing without a cap ({uncapped}): {gaps:?}",
        times.len()
    );
}

#[tokio::test]
async fn a_wait_for_a_finished_job_asks_once() {
    let app = waiting_app(millis(100), millis(400), |_| {}).await;
    app.upstream
        .on("DONE-1", Reply::Json(200, crate::helpers::sample_success()));
    app.wait_for("DONE-1", None).await.expect("OK");
    assert_eq!(app.upstream.attempts("DONE-1"), 1);
}

#[tokio::test]
async fn concurrent_waiters_share_each_poll() {
    // Without coalescing, so only the wait's own sharing counts.
    let app = waiting_app(millis(200), millis(200), |s| s.upstream.coalesce = false).await;
    app.upstream.jobs_finish_after(MS(2500));
    app.submit(submit_request(valid_image(), "SHARED-1"))
        .await
        .expect("submitted");
    let waiters: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                let mut request = tonic::Request::new(ktp_gateway::proto::GetKtpResultRequest {
                    read_mask: None,
                    reference_id: "SHARED-1".into(),
                    wait: true,
                });
                request.set_timeout(Duration::from_secs(20));
                client.get_ktp_result(request).await
            })
        })
        .collect();
    for w in waiters {
        let r = w
            .await
            .expect("task")
            .expect("every waiter gets the result");
        assert_eq!(r.into_inner().reference_id, "SHARED-1");
    }
    // One poll per 200 ms for 2.5 s: about 13 (fewer on a busy machine).
    // One per waiter: over 100.
    let polls = app.upstream.result_times("SHARED-1").len();
    assert!((3..=20).contains(&polls), "{polls} polls for 8 waiters");
}

#[tokio::test]
async fn a_waiter_that_goes_away_stops_its_polling() {
    let app = waiting_app(millis(100), millis(100), |_| {}).await;
    // Never finishes: every poll is "not found".
    let spawn_waiter = || {
        let mut client = app.client.clone();
        tokio::spawn(async move {
            client
                .get_ktp_result(ktp_gateway::proto::GetKtpResultRequest {
                    read_mask: None,
                    reference_id: "GONE-1".into(),
                    wait: true,
                })
                .await
        })
    };
    let first = spawn_waiter();
    let second = spawn_waiter();
    tokio::time::sleep(MS(1000)).await;
    let polls = |app: &TestApp| app.upstream.result_times("GONE-1").len();
    assert!(polls(&app) >= 3, "{} polls", polls(&app));

    // One of two goes away: the other still waits, so polling goes on.
    first.abort();
    tokio::time::sleep(MS(300)).await;
    let before = polls(&app);
    tokio::time::sleep(MS(1000)).await;
    assert!(polls(&app) > before, "polling stopped while a waiter waits");

    // The last goes away: no poll after it (one already sent may land).
    second.abort();
    tokio::time::sleep(MS(300)).await;
    let at_leaving = polls(&app);
    tokio::time::sleep(MS(1000)).await;
    assert_eq!(
        polls(&app),
        at_leaving,
        "polled on after the last waiter left"
    );
    assert_eq!(app.upstream.busy_connections(), 0);
}

#[tokio::test]
async fn wait_max_wait_ends_the_wait_with_not_found_and_waited_ms() {
    let app = waiting_app(millis(200), millis(200), |s| {
        s.wait.max_wait = wait_millis(1000)
    })
    .await;
    let started = Instant::now();
    let e = expect_error(app.wait_for("NEVER-1", None).await);
    let elapsed = started.elapsed();
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (
            Code::NotFound,
            "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND",
            "api.verihubs.com"
        ),
        "{}",
        e.message
    );
    assert_eq!(e.meta("upstream_http_status"), Some("404"));
    let waited: u64 = e
        .meta("waited_ms")
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("waited_ms {:?}", e.meta("waited_ms")));
    assert!(
        waited >= 600 && u128::from(waited) <= elapsed.as_millis(),
        "waited_ms {waited}, call took {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let info = e
        .details
        .resource_info()
        .expect("ResourceInfo, as without wait");
    assert_eq!(info.resource_name, "NEVER-1");
    // Polled all along: at 0, 200, … ms.
    let polls = app.upstream.result_times("NEVER-1").len();
    assert!((2..=6).contains(&polls), "{polls} polls");
}

#[tokio::test]
async fn the_callers_deadline_ends_the_wait_with_not_found_too() {
    let app = waiting_app(millis(200), millis(200), |_| {}).await;
    let started = Instant::now();
    let e = expect_error(app.wait_for("NEVER-2", Some(Duration::from_secs(2))).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::NotFound, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"),
        "{}",
        e.message
    );
    assert!(
        e.meta("waited_ms")
            .is_some_and(|w| w.parse::<u64>().is_ok())
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(app.upstream.result_times("NEVER-2").len() >= 2);
}

#[tokio::test]
async fn a_job_error_or_another_error_ends_the_wait_at_once() {
    let app = waiting_app(millis(100), millis(100), |_| {}).await;
    app.upstream.jobs_finish_after(MS(500));
    app.submit(submit_request(valid_image(), "FAILS-1"))
        .await
        .expect("submitted");
    app.upstream.on(
        "FAILS-1",
        Reply::Json(
            200,
            json!({"error_code": "FAIL_ON_1", "data": {"image_quality": {"blur": true}}}),
        ),
    );
    let e = expect_error(app.wait_for("FAILS-1", Some(Duration::from_secs(10))).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::FailedPrecondition, "FAIL_ON_1")
    );
    assert_eq!(e.meta("blur"), Some("true"));
    assert_eq!(e.meta("waited_ms"), None, "not a wait that ran out");

    app.upstream.on("AUTH-1", Reply::Json(401, json!({})));
    let started = Instant::now();
    let e = expect_error(app.wait_for("AUTH-1", Some(Duration::from_secs(10))).await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::Internal, "UPSTREAM_AUTH_FAILED")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(app.upstream.attempts("AUTH-1"), 1);
}

#[tokio::test]
async fn without_wait_a_job_not_done_is_not_found_at_once() {
    let app = waiting_app(millis(100), millis(100), |_| {}).await;
    app.upstream.jobs_finish_after(Duration::from_secs(30));
    app.submit(submit_request(valid_image(), "NOWAIT-1"))
        .await
        .expect("submitted");
    let started = Instant::now();
    let e = expect_error(app.call("NOWAIT-1").await);
    assert_eq!(
        (e.code, e.reason()),
        (Code::NotFound, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")
    );
    assert_eq!(e.meta("waited_ms"), None);
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(MS(400)).await;
    assert_eq!(app.upstream.result_times("NOWAIT-1").len(), 1, "asked once");
}

/// An upstream slower than the whole wait: no poll answered, so the call
/// cannot say "not found" (the upstream never said so), and the end was
/// the gateway's own `wait.max_wait`, not the caller's deadline: NOT_FOUND
/// `RESULT_NOT_READY` with `waited_ms`, no `upstream_http_status`. When the
/// caller's own deadline ends it, DEADLINE_EXCEEDED stays.
#[tokio::test]
async fn a_wait_no_poll_answered_ends_with_result_not_ready_or_the_callers_deadline() {
    let app = waiting_app(millis(200), millis(200), |s| {
        s.wait.max_wait = wait_millis(500);
    })
    .await;
    app.upstream
        .otherwise(Reply::delayed(Duration::from_secs(5), Reply::not_found()));
    let e = expect_error(app.wait_for("SLOW-1", Some(Duration::from_secs(4))).await);
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::NotFound, "RESULT_NOT_READY", "ktp-gateway"),
        "{}",
        e.message
    );
    assert!(
        e.meta("waited_ms")
            .is_some_and(|w| w.parse::<u64>().is_ok())
    );
    assert_eq!(e.meta("upstream_http_status"), None);
    assert_eq!(e.meta("reference_id"), Some("SLOW-1"));

    let e = expect_error(
        app.wait_for("SLOW-2", Some(Duration::from_millis(300)))
            .await,
    );
    assert_eq!(e.code, Code::DeadlineExceeded, "{}", e.message);
}

/// Waiting calls have a cap of their own, `wait.max_waiting`, and count
/// only there from their wait's start: a waiting call leaves its place among
/// `server.max_in_flight` to others, the gauges tell them apart, and past
/// the wait cap a waiting call is refused (OVERLOADED, scope `waits`),
/// `ExtractKtp` before it submits anything.
#[tokio::test]
async fn waiting_calls_count_against_their_own_cap() {
    let app = waiting_app(millis(200), millis(200), |s| {
        s.server.max_in_flight = Some(count(1));
        s.wait.max_waiting = Some(count(1));
    })
    .await;
    app.upstream
        .on("ANSWERED-1", Reply::Json(200, sample_success()));
    let waiting = {
        let mut client = app.client.clone();
        let mut request = tonic::Request::new(GetKtpResultRequest {
            read_mask: None,
            reference_id: "NEVER-W".to_owned(),
            wait: true,
        });
        request.set_timeout(Duration::from_secs(10));
        tokio::spawn(async move { client.get_ktp_result(request).await })
    };
    // The waiting call holds its wait place, not the one call in flight.
    let mut scraped = String::new();
    for _ in 0..100 {
        scraped = app.scrape().await;
        if scraped.contains("ktp_gateway_grpc_requests_waiting 1") {
            break;
        }
        tokio::time::sleep(MS(20)).await;
    }
    assert!(
        scraped.contains("ktp_gateway_grpc_requests_waiting 1")
            && scraped.contains("ktp_gateway_grpc_requests_in_flight 0"),
        "{scraped}"
    );
    app.call("ANSWERED-1")
        .await
        .expect("the call in flight is not taken by the waiting one");

    let e = expect_error(app.wait_for("NEVER-W2", Some(Duration::from_secs(5))).await);
    assert_eq!(
        (e.code, e.reason(), e.meta("scope"), e.meta("limit")),
        (
            Code::ResourceExhausted,
            "OVERLOADED",
            Some("waits"),
            Some("1")
        )
    );
    let e = expect_error(
        app.extract(extract_request(valid_image(), "EXTRACT-WAITS-FULL"))
            .await,
    );
    assert_eq!(e.meta("scope"), Some("waits"), "{}", e.message);
    assert!(
        app.upstream.submits().is_empty(),
        "nothing is submitted (billed) when the wait cap is full"
    );
    waiting.abort();
}

/// At SIGTERM waiting calls do not hold the pod: when the drain delay ends,
/// a waiting `GetKtpResult` answers UNAVAILABLE (retry as is, elsewhere)
/// and a waiting `ExtractKtp` ABORTED (resume with a wait on its id), both
/// SHUTTING_DOWN naming the job with RetryInfo 0 s, and the server stops
/// long before its grace; a call that is not waiting drains as before.
#[tokio::test]
async fn at_shutdown_waiting_calls_hand_their_jobs_back() {
    let mut app = waiting_app(millis(200), millis(200), |s| {
        s.server.drain_delay = MS(300);
        s.server.shutdown_grace = secs(20);
        s.wait.max_wait = wait_millis(60_000);
    })
    .await;
    app.upstream.on(
        "DRAINED-1",
        Reply::delayed(MS(800), Reply::Json(200, sample_success())),
    );
    let waiting = {
        let mut client = app.client.clone();
        let request = GetKtpResultRequest {
            read_mask: None,
            reference_id: "HANDED-BACK-1".to_owned(),
            wait: true,
        };
        tokio::spawn(async move { client.get_ktp_result(request).await })
    };
    let extracting = {
        let mut client = app.client.clone();
        let request = extract_request(valid_image(), "HANDED-BACK-2");
        tokio::spawn(async move { client.extract_ktp(request).await })
    };
    while app.upstream.result_times("HANDED-BACK-2").is_empty() {
        tokio::time::sleep(MS(20)).await;
    }
    let draining = app.spawn_call("DRAINED-1");
    let took = app.shut_down_within(Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "the waits held the pod: {took:?}"
    );

    let e = expect_error(waiting.await.expect("task"));
    assert_eq!(
        (e.code, e.reason(), e.domain()),
        (Code::Unavailable, "SHUTTING_DOWN", "ktp-gateway"),
        "{}",
        e.message
    );
    assert_eq!(e.meta("reference_id"), Some("HANDED-BACK-1"));
    assert_eq!(e.retry_delay(), Some(Duration::ZERO));
    let e = expect_error(extracting.await.expect("task"));
    assert_eq!((e.code, e.reason()), (Code::Aborted, "SHUTTING_DOWN"));
    assert_eq!(e.meta("reference_id"), Some("HANDED-BACK-2"));
    assert_eq!(e.retry_delay(), Some(Duration::ZERO));
    draining
        .await
        .expect("task")
        .expect("a call that was not waiting drains as before");
}

/// The submit's time of a job, as the fake upstream received it.
fn submitted_at(app: &TestApp, id: &str) -> Instant {
    app.upstream
        .submits()
        .iter()
        .find(|r| r.reference_id().as_deref() == Some(id))
        .map(|r| r.received)
        .expect("submitted")
}

/// Once a job has been seen finished, a wait on a job this process
/// submitted makes its first poll when the job is likely done, not at once:
/// one GET for a job that takes as long as the last ones; a job it did not
/// submit is polled at once; `wait.first_poll` = `0s` keeps today's
/// schedule. The polls and the learnt times are in the metrics.
#[tokio::test]
async fn the_first_poll_comes_when_the_job_is_likely_done() {
    let app = waiting_app(secs(1), secs(4), |_| {}).await;
    app.upstream.jobs_finish_after(MS(400));
    for n in 1..=3 {
        let id = format!("LEARNT-{n}");
        app.extract(extract_request(valid_image(), &id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        let polls = app.upstream.result_times(&id);
        let first = polls[0] - submitted_at(&app, &id);
        if n == 1 {
            // Nothing learnt yet: at once, then a second later.
            assert_eq!(polls.len(), 2, "{id}: {first:?}");
            assert!(first < MS(300), "{id}: first poll after {first:?}");
        } else {
            // About half a second learnt (between 0 and 1 s).
            assert_eq!(polls.len(), 1, "{id}: polled {} times", polls.len());
            assert!(first >= MS(300), "{id}: first poll after {first:?}");
        }
    }
    // Not submitted here: it may be an old job, asked for at once.
    app.upstream
        .on("FOREIGN-1", Reply::Json(200, sample_success()));
    let started = Instant::now();
    app.wait_for("FOREIGN-1", Some(Duration::from_secs(5)))
        .await
        .expect("a finished job");
    assert!(started.elapsed() < MS(300), "{:?}", started.elapsed());

    let scraped = app.scrape().await;
    for line in [
        r#"ktp_gateway_wait_polls_total{outcome="finished"} 4"#,
        r#"ktp_gateway_wait_polls_total{outcome="not_ready"} 1"#,
        "ktp_gateway_job_processing_seconds_count 3",
    ] {
        assert!(scraped.contains(line), "{line} in\n{scraped}");
    }

    let fixed = waiting_app(secs(1), secs(4), |s| {
        s.wait.first_poll = FirstPoll::After(Duration::ZERO);
    })
    .await;
    fixed.upstream.jobs_finish_after(MS(400));
    for n in 1..=2 {
        let id = format!("AT-ONCE-{n}");
        fixed
            .extract(extract_request(valid_image(), &id))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:?}"));
        assert_eq!(fixed.upstream.result_times(&id).len(), 2, "{id}");
    }
}
