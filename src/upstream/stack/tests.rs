//! The composed stack, with a scripted attempt in place of the HTTP client:
//! how the layers work together, in their order.

use std::time::Duration;

use super::*;
use crate::resilience::testing::{Script, Step, upstream_settings};

fn unavailable() -> UpstreamError {
    UpstreamError::Status {
        status: 503,
        error_code: None,
        retry_after: None,
    }
}

fn call(id: &str) -> Call<FetchResult, UpstreamError> {
    let op = FetchResult::new(ReferenceId::parse(id.to_owned()).unwrap(), None);
    Call::new(op, None)
}

fn stack(
    settings: &[(&str, &str)],
    script: &Script<KtpResult, UpstreamError>,
) -> (ResultStack<Script<KtpResult, UpstreamError>>, Layers) {
    let layers = Layers::new(&upstream_settings(settings), Metrics::new().unwrap());
    (layers.result_stack(script.clone()), layers)
}

fn metric(layers: &Layers, series: &str) -> Option<String> {
    let page = layers.metrics.render();
    let value = page
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))?;
    Some(value.to_owned())
}

#[tokio::test(start_paused = true)]
async fn the_breaker_counts_every_attempt_and_a_refused_retry_returns_the_real_error() {
    let script = Script::always(Err(unavailable()));
    let (service, layers) = stack(&[("BREAKER__FAILURE_THRESHOLD", "2")], &script);
    // Attempt 1 and its retry fail: the circuit opens, so the third attempt
    // is refused, and the caller gets the 503 that asked for it.
    assert_eq!(service.clone().oneshot(call("X")).await, Err(unavailable()));
    assert_eq!(script.calls(), 2);
    assert_eq!(layers.breaker.phase(), Phase::Open);
    match service.oneshot(call("X")).await {
        Err(UpstreamError::CircuitOpen { retry_in }) => {
            assert!(retry_in > Duration::from_secs(9), "{retry_in:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(script.calls(), 2, "fails fast");
    assert_eq!(
        metric(
            &layers,
            r#"ktp_gateway_upstream_requests_total{http_status="503",outcome="http_error"}"#
        )
        .as_deref(),
        Some("2"),
        "refusals are not attempts"
    );
    assert_eq!(
        metric(&layers, "ktp_gateway_upstream_retries_total").as_deref(),
        Some("1")
    );
}

#[tokio::test(start_paused = true)]
async fn coalesced_callers_share_one_retried_request() {
    let script = Script::new([
        Step::after(Duration::from_millis(20), Err(unavailable())),
        Step::after(Duration::from_millis(20), Ok(KtpResult::default())),
    ]);
    let (service, layers) = stack(&[], &script);
    let (a, b) = tokio::join!(
        service.clone().oneshot(call("SAME")),
        service.clone().oneshot(call("SAME"))
    );
    assert_eq!((a, b), (Ok(KtpResult::default()), Ok(KtpResult::default())));
    assert_eq!(script.calls(), 2);
    assert_eq!(script.seen()[1].previous, Some(unavailable()));
    for (series, value) in [
        ("ktp_gateway_coalesced_requests_total", "1"),
        ("ktp_gateway_upstream_retries_total", "1"),
        (
            r#"ktp_gateway_upstream_requests_total{http_status="200",outcome="success"}"#,
            "1",
        ),
    ] {
        assert_eq!(metric(&layers, series).as_deref(), Some(value), "{series}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_coalescing_each_call_is_its_own_request() {
    let script = Script::new([Step::after(
        Duration::from_millis(20),
        Ok(KtpResult::default()),
    )]);
    let (service, layers) = stack(&[("COALESCE", "false")], &script);
    assert!(matches!(service, Either::Right(_)));
    let (a, b) = tokio::join!(
        service.clone().oneshot(call("SAME")),
        service.clone().oneshot(call("SAME"))
    );
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(script.calls(), 2);
    assert_eq!(
        metric(&layers, "ktp_gateway_coalesced_requests_total").as_deref(),
        Some("0")
    );
}

/// An attempt that panics: a bug of the gateway's own.
#[derive(Clone)]
struct Panics;

impl tower::Service<Call<FetchResult, UpstreamError>> for Panics {
    type Response = KtpResult;
    type Error = UpstreamError;
    type Future = super::super::client::AttemptFuture<KtpResult>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), UpstreamError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Call<FetchResult, UpstreamError>) -> Self::Future {
        Box::pin(async { panic!("a bug in the attempt") })
    }
}

/// A shared request that panics is the gateway's bug, not an unreachable
/// upstream: its callers get `FlightLost` (INTERNAL `INTERNAL_ERROR`), not a
/// transport error (UNAVAILABLE `UPSTREAM_UNAVAILABLE`, "retry as is").
#[tokio::test]
async fn a_panicking_shared_request_is_lost_not_an_unreachable_upstream() {
    let layers = Layers::new(&upstream_settings(&[]), Metrics::new().unwrap());
    let service = layers.result_stack(Panics);
    let (a, b) = tokio::join!(
        service.clone().oneshot(call("X")),
        service.clone().oneshot(call("X"))
    );
    assert_eq!(
        (a, b),
        (
            Err(UpstreamError::FlightLost),
            Err(UpstreamError::FlightLost)
        )
    );
    assert_eq!(
        layers.breaker.phase(),
        Phase::Closed,
        "not the upstream's failure"
    );
}
