//! Metrics of every upstream attempt, as a tower layer just around the one
//! attempt: its outcome, HTTP status and duration, and whether it was a retry.
//! Attempts the breaker refused never get here, so they are not counted.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use opentelemetry_sdk::trace::Span;

use super::{
    UpstreamError,
    attempt_span::{self, Peer, Traced},
};
use crate::{
    metrics::{AttemptOutcome, Metrics},
    resilience::Call,
};

/// Counts attempts in [`Metrics`], and traces each one.
#[derive(Debug, Clone)]
pub struct AttemptMetricsLayer {
    metrics: Arc<Metrics>,
    peer: Arc<Peer>,
}

impl AttemptMetricsLayer {
    /// Attempts are recorded in `metrics`; their spans name `peer`.
    pub fn new(metrics: Arc<Metrics>, peer: Arc<Peer>) -> Self {
        Self { metrics, peer }
    }
}

impl<S> Layer<S> for AttemptMetricsLayer {
    type Service = AttemptMetrics<S>;

    fn layer(&self, inner: S) -> AttemptMetrics<S> {
        AttemptMetrics {
            inner,
            metrics: Arc::clone(&self.metrics),
            peer: Arc::clone(&self.peer),
        }
    }
}

/// See [`AttemptMetricsLayer`].
#[derive(Debug, Clone)]
pub struct AttemptMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
    peer: Arc<Peer>,
}

impl<S, Op: Traced> Service<Call<Op, UpstreamError>> for AttemptMetrics<S>
where
    S: Service<Call<Op, UpstreamError>, Error = UpstreamError>,
{
    type Response = S::Response;
    type Error = UpstreamError;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut call: Call<Op, UpstreamError>) -> Self::Future {
        if call.attempt() > 0 {
            self.metrics.record_retry();
        }
        let (span, outgoing) = attempt_span::start(call.op(), &self.peer, call.attempt());
        call.set_outgoing_trace(outgoing);
        Counted {
            attempt: self.inner.call(call),
            metrics: Arc::clone(&self.metrics),
            started: Instant::now(),
            span,
        }
    }
}

pin_project! {
    /// An attempt, recorded when it ends; one dropped before (its caller
    /// gave up) records nothing, and its span ends unanswered.
    pub struct Counted<F> {
        #[pin]
        attempt: F,
        metrics: Arc<Metrics>,
        started: Instant,
        span: Option<Box<Span>>,
    }
}

impl<F, T> Future for Counted<F>
where
    F: Future<Output = Result<T, UpstreamError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.attempt.poll(cx));
        let (outcome, http_status) = match &answer {
            // Every answer the upstream's calls read as a success is a 2xx;
            // the label names the usual one.
            Ok(_) => (AttemptOutcome::Success, Some(200)),
            Err(e) => e.attempt_outcome(),
        };
        this.metrics
            .record_attempt(outcome, http_status, this.started.elapsed());
        if let Some(span) = this.span.take() {
            attempt_span::end(span, &answer);
        }
        Poll::Ready(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::ServiceExt;

    use super::*;
    use crate::resilience::{
        Failure,
        testing::{Key, Script, Step, call},
    };

    impl Traced for Key {
        fn trace(&self) -> Option<&crate::trace::TraceContext> {
            None
        }
        fn target(peer: &Peer) -> &attempt_span::Target {
            &peer.result
        }
    }

    fn series(metrics: &Metrics, prefix: &str) -> Vec<String> {
        let mut lines: Vec<_> = metrics
            .render()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_is_counted_by_outcome_status_and_retry() {
        let script = Script::new([
            Step::after(Duration::from_millis(30), Ok(1)),
            Step::now(Err(UpstreamError::Status {
                status: 404,
                error_code: None,
                retry_after: None,
            })),
            Step::now(Err(UpstreamError::Transport {
                status: None,
                detail: "reset".into(),
            })),
            Step::hang(),
        ]);
        let metrics = Arc::new(Metrics::new().unwrap());
        let peer = Arc::new(Peer::new(&"http://127.0.0.1:1".parse().unwrap()));
        let service = AttemptMetricsLayer::new(Arc::clone(&metrics), peer).layer(script.clone());
        assert_eq!(service.clone().oneshot(call("a", None)).await, Ok(1));
        let mut retry = call("b", None);
        retry.retry_after_error(UpstreamError::circuit_open(Duration::ZERO));
        assert!(service.clone().oneshot(retry).await.is_err());
        assert!(service.clone().oneshot(call("c", None)).await.is_err());
        let abandoned = service.oneshot(call("d", None));
        assert!(
            tokio::time::timeout(Duration::from_secs(1), abandoned)
                .await
                .is_err()
        );
        assert_eq!(
            series(&metrics, "ktp_gateway_upstream_requests_total"),
            [
                r#"ktp_gateway_upstream_requests_total{http_status="",outcome="transport_error"} 1"#,
                r#"ktp_gateway_upstream_requests_total{http_status="200",outcome="success"} 1"#,
                r#"ktp_gateway_upstream_requests_total{http_status="404",outcome="http_error"} 1"#,
            ]
        );
        assert_eq!(
            series(&metrics, "ktp_gateway_upstream_retries_total"),
            ["ktp_gateway_upstream_retries_total 1"]
        );
        assert_eq!(
            series(
                &metrics,
                "ktp_gateway_upstream_request_duration_seconds_count"
            ),
            ["ktp_gateway_upstream_request_duration_seconds_count 3"]
        );
        assert_eq!(
            series(
                &metrics,
                r#"ktp_gateway_upstream_request_duration_seconds_bucket{le="0.025"}"#
            ),
            [r#"ktp_gateway_upstream_request_duration_seconds_bucket{le="0.025"} 2"#],
            "the 30 ms attempt in its bucket"
        );
    }
}
