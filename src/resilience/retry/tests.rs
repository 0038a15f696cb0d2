//! The policy in tower's `Retry`, in front of a scripted service, on paused
//! time: which errors retry, how often, how long it waits, and the budget.

use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt, retry::RetryLayer};

use super::*;
use crate::resilience::testing::{Fault, Script, Step, call, upstream_settings};

type Retried = tower::retry::Retry<RetryPolicy, Script<u32, Fault>>;

/// 3 attempts, backoff 50 ms doubling to 1 s, a budget far from binding
/// unless `extra` says otherwise.
fn retrying(script: &Script<u32, Fault>, extra: &[(&str, &str)]) -> Retried {
    let mut pairs = vec![("RETRY__BUDGET_MIN_PER_SEC", "1000")];
    pairs.extend_from_slice(extra);
    let policy = RetryPolicy::new(&upstream_settings(&pairs).retry);
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone())
}

fn gaps(script: &Script<u32, Fault>) -> Vec<Duration> {
    let seen = script.seen();
    seen.windows(2).map(|w| w[1].at - w[0].at).collect()
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_until_success() {
    let script = Script::new([
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Busy)),
        Step::now(Ok(7)),
    ]);
    assert_eq!(retrying(&script, &[]).oneshot(call("k", None)).await, Ok(7));
    let seen = script.seen();
    let attempts: Vec<_> = seen
        .iter()
        .map(|s| (s.attempt, s.previous.clone()))
        .collect();
    assert_eq!(
        attempts,
        [(0, None), (1, Some(Fault::Down)), (2, Some(Fault::Busy))],
        "each retry knows the error before it"
    );
}

#[tokio::test(start_paused = true)]
async fn at_most_max_attempts_then_the_last_error() {
    let script = Script::always(Err(Fault::Down));
    let answer = retrying(&script, &[]).oneshot(call("k", None)).await;
    assert_eq!((answer, script.calls()), (Err(Fault::Down), 3));

    let once = Script::always(Err(Fault::Down));
    let answer = retrying(&once, &[("RETRY__MAX_ATTEMPTS", "1")])
        .oneshot(call("k", None))
        .await;
    assert_eq!((answer, once.calls()), (Err(Fault::Down), 1));
}

#[tokio::test(start_paused = true)]
async fn final_answers_and_timeouts_are_never_retried() {
    for fault in [Fault::Refused, Fault::Slow] {
        let script = Script::always(Err(fault.clone()));
        let answer = retrying(&script, &[]).oneshot(call("k", None)).await;
        assert_eq!((answer, script.calls()), (Err(fault), 1));
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_is_full_jitter_under_a_doubling_ceiling() {
    for _ in 0..20 {
        let script = Script::always(Err(Fault::Down));
        let _ = retrying(&script, &[]).oneshot(call("k", None)).await;
        let gaps = gaps(&script);
        // The timer rounds a wait up to the next millisecond.
        assert!(gaps[0] <= Duration::from_millis(50), "{gaps:?}");
        assert!(gaps[1] <= Duration::from_millis(100), "{gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_wait_is_at_least_the_retry_after_asked_for() {
    let asked = Duration::from_millis(700);
    let script = Script::new([Step::now(Err(Fault::DownAfter(asked))), Step::now(Ok(1))]);
    assert_eq!(retrying(&script, &[]).oneshot(call("k", None)).await, Ok(1));
    let gap = gaps(&script)[0];
    // The backoff ceiling of the first retry is 50 ms, so the wait is the
    // Retry-After itself.
    assert_eq!(gap, asked);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_backoff_cap_is_returned_without_waiting() {
    let long = Fault::DownAfter(Duration::from_secs(5));
    let script = Script::new([Step::now(Err(long.clone())), Step::now(Ok(1))]);
    let started = Instant::now();
    let answer = retrying(&script, &[]).oneshot(call("k", None)).await;
    assert_eq!(answer, Err(long), "the caller gets the Retry-After");
    assert_eq!((script.calls(), started.elapsed()), (1, Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn no_retry_whose_wait_ends_past_the_deadline() {
    let script = Script::new([
        Step::now(Err(Fault::DownAfter(Duration::from_secs(1)))),
        Step::now(Ok(1)),
    ]);
    let started = Instant::now();
    let answer = retrying(&script, &[])
        .oneshot(call("k", Some(Duration::from_millis(400))))
        .await;
    assert_eq!(answer, Err(Fault::DownAfter(Duration::from_secs(1))));
    assert_eq!((script.calls(), started.elapsed()), (1, Duration::ZERO));

    // With time for the wait, the same answer is retried.
    let script = Script::new([
        Step::now(Err(Fault::DownAfter(Duration::from_secs(1)))),
        Step::now(Ok(1)),
    ]);
    let answer = retrying(&script, &[])
        .oneshot(call("k", Some(Duration::from_secs(2))))
        .await;
    assert_eq!((answer, script.calls()), (Ok(1), 2));
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_breaker_refuses_ends_with_the_error_that_asked_for_it() {
    let script = Script::new([
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Open(Duration::from_secs(3)))),
    ]);
    let answer = retrying(&script, &[]).oneshot(call("k", None)).await;
    assert_eq!((answer, script.calls()), (Err(Fault::Down), 2));

    // A first attempt the breaker refuses is the answer itself.
    let script = Script::always(Err(Fault::Open(Duration::from_secs(3))));
    let answer = retrying(&script, &[]).oneshot(call("k", None)).await;
    assert_eq!(answer, Err(Fault::Open(Duration::from_secs(3))));
}

/// Each call allowed one retry, 1 ms after its first attempt.
fn budgeted(script: &Script<u32, Fault>, budget: &[(&str, &str)]) -> Retried {
    let mut pairs = vec![
        ("RETRY__MAX_ATTEMPTS", "2"),
        ("RETRY__BASE_BACKOFF", "1ms"),
        ("RETRY__MAX_BACKOFF", "1ms"),
    ];
    pairs.extend_from_slice(budget);
    let policy = RetryPolicy::new(&upstream_settings(&pairs).retry);
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(script.clone())
}

/// `calls` failing calls, one at a time; how many of them retried.
async fn retried(service: &Retried, script: &Script<u32, Fault>, calls: usize) -> usize {
    let before = script.calls();
    for _ in 0..calls {
        let _ = service.clone().oneshot(call("k", None)).await;
    }
    script.calls() - before - calls
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_stops_retries() {
    let script = Script::always(Err(Fault::Down));
    let none = [
        ("RETRY__BUDGET_RATIO", "0"),
        ("RETRY__BUDGET_MIN_PER_SEC", "0"),
    ];
    assert_eq!(retried(&budgeted(&script, &none), &script, 20).await, 0);
}

/// Under sustained failure, with no floor, one call in five may retry.
#[tokio::test(start_paused = true)]
async fn retries_are_limited_to_the_ratio_of_calls() {
    let script = Script::always(Err(Fault::Down));
    let ratio = [("RETRY__BUDGET_MIN_PER_SEC", "0")];
    let service = budgeted(&script, &ratio);
    assert_eq!(retried(&service, &script, 1000).await, 200);
}

/// The floor: `budget_min_per_sec` × the 10 s window, without traffic; it is
/// back once the window has slid past the retries that used it.
#[tokio::test(start_paused = true)]
async fn the_floor_allows_retries_without_traffic_per_window() {
    let script = Script::always(Err(Fault::Down));
    let floor = [
        ("RETRY__BUDGET_RATIO", "0"),
        ("RETRY__BUDGET_MIN_PER_SEC", "2"),
    ];
    let service = budgeted(&script, &floor);
    assert_eq!(retried(&service, &script, 30).await, 20, "2/s × 10 s");
    assert_eq!(retried(&service, &script, 5).await, 0, "used up");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        retried(&service, &script, 5).await,
        0,
        "still inside the window"
    );
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(
        retried(&service, &script, 30).await,
        20,
        "the window slid past them"
    );
}

/// A long quiet period banks nothing beyond the floor of one window.
#[tokio::test(start_paused = true)]
async fn a_quiet_hour_cannot_bank_an_unbounded_burst() {
    let script = Script::always(Err(Fault::Down));
    let floor = [
        ("RETRY__BUDGET_RATIO", "0"),
        ("RETRY__BUDGET_MIN_PER_SEC", "1"),
    ];
    let service = budgeted(&script, &floor);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(retried(&service, &script, 50).await, 10);
}

/// The floor and the ratio add up: 1/s × 10 s, plus one in five of 50 calls.
#[tokio::test(start_paused = true)]
async fn floor_and_ratio_add_up() {
    let script = Script::always(Err(Fault::Down));
    let both = [("RETRY__BUDGET_MIN_PER_SEC", "1")];
    let service = budgeted(&script, &both);
    assert_eq!(retried(&service, &script, 50).await, 20);
}

/// `budget_min_per_sec` is a float in the settings; TpsBudget counts whole
/// retries per second, so a fraction rounds up.
#[tokio::test(start_paused = true)]
async fn a_fractional_floor_rounds_up() {
    let script = Script::always(Err(Fault::Down));
    let floor = [
        ("RETRY__BUDGET_RATIO", "0"),
        ("RETRY__BUDGET_MIN_PER_SEC", "0.1"),
    ];
    let service = budgeted(&script, &floor);
    assert_eq!(retried(&service, &script, 30).await, 10);
}
