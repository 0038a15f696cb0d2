//! The upstream call with its resilience stack, outermost first:
//! coalescing → circuit breaker → retries (backoff, budget, deadline) → one
//! attempt ([`UpstreamClient::fetch_once`]: timeout, connection cap, body cap).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{KtpResult, UpstreamClient, UpstreamError, client::BuildError};
use crate::{
    config::{RetrySettings, UpstreamSettings},
    metrics::{AttemptOutcome, Metrics},
    reference_id::ReferenceId,
    resilience::{
        backoff::Backoff,
        breaker::{CircuitBreaker, Outcome, Phase},
        budget::{BudgetSettings, RetryBudget},
        coalesce::Coalescer,
    },
    trace::TraceContext,
};

type Answer = Result<KtpResult, UpstreamError>;

/// The upstream as the service sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Upstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: UpstreamClient,
    retry: RetrySettings,
    backoff: Backoff,
    budget: RetryBudget,
    breaker: CircuitBreaker,
    coalescer: Option<Coalescer<String, Answer>>,
    metrics: Metrics,
}

impl Upstream {
    pub fn new(settings: &UpstreamSettings, metrics: Metrics) -> Result<Self, BuildError> {
        Ok(Self {
            inner: Arc::new(Inner {
                client: UpstreamClient::new(settings)?,
                retry: settings.retry,
                backoff: Backoff {
                    base: *settings.retry.base_backoff,
                    cap: *settings.retry.max_backoff,
                },
                budget: RetryBudget::new(BudgetSettings {
                    ratio: *settings.retry.budget_ratio,
                    min_per_sec: *settings.retry.budget_min_per_sec,
                }),
                breaker: CircuitBreaker::new(settings.breaker),
                coalescer: settings.coalesce.then(Coalescer::default),
                metrics,
            }),
        })
    }

    /// Fetches one job's result. `deadline` is the caller's; retries never
    /// start past it. Dropping the future drops the caller's interest (a
    /// coalesced request goes on while other callers still wait for it).
    pub async fn fetch(
        &self,
        reference_id: &ReferenceId,
        deadline: Option<Instant>,
        trace: Option<&TraceContext>,
    ) -> Answer {
        let Some(coalescer) = &self.inner.coalescer else {
            return self
                .inner
                .fetch_with_retries(reference_id, || deadline, trace)
                .await;
        };
        let (flight, joined) =
            coalescer.join(reference_id.as_str().to_owned(), deadline, |shared| {
                let inner = Arc::clone(&self.inner);
                let id = reference_id.clone();
                // The shared request carries the trace context of the call that started it.
                let trace = trace.cloned();
                async move {
                    inner
                        .fetch_with_retries(&id, || shared.get(), trace.as_ref())
                        .await
                }
            });
        if joined {
            self.inner.metrics.record_coalesced();
        }
        flight.wait().await.unwrap_or_else(|| {
            Err(UpstreamError::Transport {
                status: None,
                detail: "the shared upstream request failed".into(),
            })
        })
    }

    /// The circuit breaker's current phase.
    pub fn circuit_phase(&self) -> Phase {
        self.inner.breaker.phase()
    }
}

impl Inner {
    async fn fetch_with_retries(
        &self,
        reference_id: &ReferenceId,
        deadline: impl Fn() -> Option<Instant>,
        trace: Option<&TraceContext>,
    ) -> Answer {
        if let Err(retry_in) = self.breaker.admit() {
            return Err(UpstreamError::CircuitOpen { retry_in });
        }
        self.budget.deposit();
        let mut retry = 0;
        loop {
            let started = Instant::now();
            let answer = self.client.fetch_once(reference_id, trace).await;
            let (outcome, http_status) = attempt_outcome(&answer);
            self.metrics
                .record_attempt(outcome, http_status, started.elapsed());
            self.breaker.record(breaker_outcome(&answer));
            let error = match answer {
                Ok(result) => return Ok(result),
                Err(e) => e,
            };
            let Some(wait) = self.retry_wait(&error, retry, deadline()) else {
                return Err(error);
            };
            if !self.budget.try_withdraw() || self.breaker.admit().is_err() {
                return Err(error);
            }
            self.metrics.record_retry();
            tracing::debug!(retry = retry + 1, wait_ms = wait.as_millis() as u64, error = %error, "retrying upstream");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// How long to wait before retrying after `error`, or `None` when this
    /// error must not be retried: not transient, attempts used up, a
    /// `Retry-After` longer than the backoff cap, or the wait would end past
    /// the caller's deadline.
    fn retry_wait(
        &self,
        error: &UpstreamError,
        retry: u32,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        if !is_retryable(error) || retry + 1 >= *self.retry.max_attempts {
            return None;
        }
        let asked = retry_after(error).unwrap_or_default();
        if asked > self.backoff.cap {
            return None;
        }
        let wait = self.backoff.jittered(retry).max(asked);
        match deadline {
            Some(d) if Instant::now() + wait >= d => None,
            _ => Some(wait),
        }
    }
}

/// Transient failures of the idempotent GET: connection errors, 429 and
/// 500/502/503/504. Never other 4xx, job errors, timeouts (a slow upstream
/// only gets slower with more load) or unusable bodies.
pub fn is_retryable(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Transport { .. } => true,
        UpstreamError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
        _ => false,
    }
}

fn retry_after(error: &UpstreamError) -> Option<Duration> {
    match error {
        UpstreamError::Status { retry_after, .. } => *retry_after,
        _ => None,
    }
}

/// An attempt's outcome and HTTP status, as metric labels.
fn attempt_outcome(answer: &Answer) -> (AttemptOutcome, Option<u16>) {
    match answer {
        Ok(_) => (AttemptOutcome::Success, Some(200)),
        Err(UpstreamError::JobFailed { status, .. }) => (AttemptOutcome::JobError, Some(*status)),
        Err(UpstreamError::Status { status, .. }) => (AttemptOutcome::HttpError, Some(*status)),
        Err(UpstreamError::Timeout { status, .. }) => (AttemptOutcome::Timeout, *status),
        Err(UpstreamError::Transport { status, .. }) => (AttemptOutcome::TransportError, *status),
        Err(UpstreamError::BadResponse { status, .. }) => {
            (AttemptOutcome::BadResponse, Some(*status))
        }
        // Never sent; fetch_with_retries returns before any attempt.
        Err(UpstreamError::CircuitOpen { .. }) => (AttemptOutcome::TransportError, None),
    }
}

/// What an attempt says about the upstream's health: connection errors,
/// timeouts and 5xx count against it, a 429 says nothing (it is up, and
/// busy), anything else is a sign of life.
pub fn breaker_outcome(answer: &Answer) -> Outcome {
    match answer {
        Err(UpstreamError::Transport { .. } | UpstreamError::Timeout { .. }) => Outcome::Failure,
        Err(UpstreamError::Status {
            status: 500 | 502 | 503 | 504,
            ..
        }) => Outcome::Failure,
        Err(UpstreamError::Status { status: 429, .. }) => Outcome::Neutral,
        Err(UpstreamError::CircuitOpen { .. }) => Outcome::Neutral,
        _ => Outcome::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> UpstreamError {
        UpstreamError::Status {
            status,
            error_code: None,
            retry_after: None,
        }
    }

    #[test]
    fn retryable_errors_are_exactly_the_transient_ones() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retryable(&status(s)), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 501, 505] {
            assert!(!is_retryable(&status(s)), "{s}");
        }
        assert!(is_retryable(&UpstreamError::Transport {
            status: None,
            detail: "reset".into()
        }));
        assert!(!is_retryable(&UpstreamError::Timeout {
            limit: Duration::from_secs(1),
            status: None
        }));
        assert!(!is_retryable(&UpstreamError::JobFailed {
            status: 200,
            code: "X".into(),
            image_quality: None
        }));
        assert!(!is_retryable(&UpstreamError::BadResponse {
            status: 200,
            problem: super::super::BodyProblem::NotJson
        }));
    }

    #[test]
    fn breaker_counts_outages_not_answers() {
        assert_eq!(breaker_outcome(&Err(status(503))), Outcome::Failure);
        assert_eq!(
            breaker_outcome(&Err(UpstreamError::Timeout {
                limit: Duration::ZERO,
                status: None
            })),
            Outcome::Failure
        );
        assert_eq!(breaker_outcome(&Err(status(429))), Outcome::Neutral);
        assert_eq!(breaker_outcome(&Err(status(404))), Outcome::Success);
        assert_eq!(breaker_outcome(&Ok(KtpResult::default())), Outcome::Success);
    }
}
