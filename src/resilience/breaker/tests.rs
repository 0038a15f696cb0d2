//! The state machine on a clock of the test's choosing, and the layer as a
//! `Service` against a scripted upstream on paused time.

use std::sync::Arc;

use tower::{Layer, ServiceExt};

use super::*;
use crate::resilience::testing::{Fault, Script, Step, call, upstream_settings};

const THRESHOLD: u32 = 3;

/// Opens after 3 consecutive failures, for 10 s.
fn breaker() -> CircuitBreaker {
    let settings = upstream_settings(&[
        ("BREAKER__FAILURE_THRESHOLD", "3"),
        ("BREAKER__COOLDOWN", "10s"),
    ]);
    CircuitBreaker::new(&settings.breaker)
}

/// A breaker that `THRESHOLD` failures just opened, at `t`.
fn tripped() -> (CircuitBreaker, Instant) {
    let b = breaker();
    let t = Instant::now();
    for _ in 0..THRESHOLD {
        b.record_at(Outcome::Failure, t);
    }
    assert_eq!(b.phase(), Phase::Open);
    (b, t)
}

#[test]
fn opens_after_consecutive_failures_only() {
    let b = breaker();
    let t = Instant::now();
    b.record_at(Outcome::Failure, t);
    b.record_at(Outcome::Failure, t);
    b.record_at(Outcome::Success, t);
    b.record_at(Outcome::Failure, t);
    b.record_at(Outcome::Neutral, t);
    b.record_at(Outcome::Failure, t);
    assert_eq!(b.phase(), Phase::Closed);
    assert!(b.admit_at(t).is_ok());
    b.record_at(Outcome::Failure, t);
    assert_eq!(b.phase(), Phase::Open);
    assert_eq!(
        b.admit_at(t + Duration::from_secs(4)),
        Err(Duration::from_secs(6))
    );
}

#[test]
fn half_open_lets_one_probe_through_and_its_answer_decides() {
    let (b, t) = tripped();
    let after = t + Duration::from_secs(10);
    assert!(b.admit_at(after).is_ok(), "the probe");
    assert_eq!(b.phase(), Phase::HalfOpen);
    assert_eq!(
        b.admit_at(after),
        Err(HALF_OPEN_RETRY),
        "others wait for the probe"
    );
    b.record_at(Outcome::Failure, after);
    assert_eq!(b.phase(), Phase::Open);
    assert_eq!(b.admit_at(after), Err(Duration::from_secs(10)));

    let later = after + Duration::from_secs(10);
    assert!(b.admit_at(later).is_ok());
    b.record_at(Outcome::Success, later);
    assert_eq!(b.phase(), Phase::Closed);
    assert!(b.admit_at(later).is_ok());
}

#[test]
fn a_lost_probe_does_not_wedge_the_breaker() {
    let (b, t) = tripped();
    let probe = t + Duration::from_secs(10);
    assert!(b.admit_at(probe).is_ok());
    // The probe's caller went away and never recorded anything.
    assert!(b.admit_at(probe + Duration::from_secs(5)).is_err());
    assert!(
        b.admit_at(probe + Duration::from_secs(10)).is_ok(),
        "a new probe"
    );
}

#[test]
fn a_neutral_probe_answer_lets_the_next_probe_through() {
    let (b, t) = tripped();
    let probe = t + Duration::from_secs(10);
    assert!(b.admit_at(probe).is_ok());
    b.record_at(Outcome::Neutral, probe);
    assert!(b.admit_at(probe).is_ok());
}

type Guarded = Breaker<Script<u32, Fault>>;

fn guarded(script: &Script<u32, Fault>) -> (Guarded, Arc<CircuitBreaker>) {
    let breaker = Arc::new(breaker());
    let layer = BreakerLayer::new(Arc::clone(&breaker));
    (layer.layer(script.clone()), breaker)
}

async fn attempt(service: &Guarded) -> Result<u32, Fault> {
    service.clone().oneshot(call("k", None)).await
}

#[tokio::test(start_paused = true)]
async fn the_layer_opens_on_failed_attempts_and_refuses_without_calling() {
    let script = Script::new([
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Busy)),
        Step::now(Err(Fault::Refused)),
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Slow)),
        Step::now(Err(Fault::Down)),
    ]);
    let (service, breaker) = guarded(&script);
    for _ in 0..5 {
        attempt(&service).await.unwrap_err();
    }
    assert_eq!(
        breaker.phase(),
        Phase::Closed,
        "a 429 is neutral, a 404 a sign of life"
    );
    assert_eq!(attempt(&service).await, Err(Fault::Down));
    assert_eq!(breaker.phase(), Phase::Open);
    tokio::time::advance(Duration::from_secs(4)).await;
    assert_eq!(
        attempt(&service).await,
        Err(Fault::Open(Duration::from_secs(6)))
    );
    assert_eq!(script.calls(), 6, "refused without a call");
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_one_probe_through_the_layer() {
    let script = Script::new([
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Down)),
        Step::after(Duration::from_millis(500), Err(Fault::Down)),
        Step::after(Duration::from_millis(500), Ok(1)),
        Step::now(Ok(2)),
    ]);
    let (service, breaker) = guarded(&script);
    for _ in 0..3 {
        attempt(&service).await.unwrap_err();
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    let probe = tokio::spawn({
        let service = service.clone();
        async move { attempt(&service).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(breaker.phase(), Phase::HalfOpen);
    assert_eq!(
        attempt(&service).await,
        Err(Fault::Open(HALF_OPEN_RETRY)),
        "others wait for the probe"
    );
    assert_eq!(probe.await.unwrap(), Err(Fault::Down));
    assert_eq!(breaker.phase(), Phase::Open, "a failed probe re-opens");

    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(attempt(&service).await, Ok(1), "the next probe succeeds");
    assert_eq!(breaker.phase(), Phase::Closed);
    assert_eq!(attempt(&service).await, Ok(2));
    assert_eq!(script.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_success_closes_and_resets_the_count() {
    let script = Script::new([
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Down)),
        Step::now(Ok(1)),
        Step::now(Err(Fault::Down)),
        Step::now(Err(Fault::Down)),
    ]);
    let (service, breaker) = guarded(&script);
    for _ in 0..5 {
        let _ = attempt(&service).await;
    }
    assert_eq!(breaker.phase(), Phase::Closed);
}
