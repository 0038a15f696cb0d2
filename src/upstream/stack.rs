//! The upstream call as one tower stack, composed in `Layers::result_stack`,
//! outermost first:
//!
//! 1. coalescing (`upstream.coalesce`): concurrent calls for one reference
//!    id share one request;
//! 2. retries: tower's `Retry` with [`RetryPolicy`] (transient errors only,
//!    backoff, `Retry-After`, the caller's deadline, the retry budget);
//! 3. the circuit breaker, around every attempt (retries included): it
//!    counts attempts, and a retry needs its admission like a first try;
//! 4. the connection cap (`upstream.max_connections`): a slot, waited for
//!    at most half of `upstream.timeout`; without one, OVERLOADED;
//! 5. attempt metrics, from the moment the attempt holds its slot;
//! 6. one attempt ([`UpstreamClient`]: timeout, body cap).
//!
//! The layers below coalescing are generic over the operation, and their
//! state (breaker, budget, slots, metrics, connection pool) lives in `Layers`, so a
//! second kind of call (the submit POST) gets a stack of its own from the
//! same expression minus coalescing, sharing that state.

use std::{fmt, sync::Arc};

use tokio::time::Instant;
use tower::{
    ServiceBuilder, ServiceExt,
    retry::{Retry, RetryLayer},
    util::Either,
};

use super::{
    BuildError, KtpResult, UpstreamClient, UpstreamError,
    attempt_span::Peer,
    attempts::AttemptMetrics,
    attempts::AttemptMetricsLayer,
    result::FetchResult,
    submit::{SubmitJob, Submitted},
    wait::{self, Polls, Waited},
};
use crate::{
    config::{UpstreamSettings, WaitSettings},
    metrics::Metrics,
    reference_id::ReferenceId,
    resilience::{
        Call,
        breaker::{Breaker, BreakerLayer, CircuitBreaker, Phase},
        coalesce::{Coalesce, CoalesceLayer},
        retry::RetryPolicy,
        slots::{Slots, SlotsLayer},
    },
    trace::{TraceContext, span::SpanHandle},
};

#[cfg(test)]
mod tests;

type Answer = Result<KtpResult, UpstreamError>;

/// What every call goes through once it is its own request: retries, the
/// breaker, the connection cap and the attempt metrics, around the one
/// attempt `S`.
pub type Guarded<S> = Retry<RetryPolicy, Breaker<Slots<AttemptMetrics<S>>>>;

/// The result call's stack around the one attempt `S`.
pub type ResultStack<S> = Either<Coalesce<Guarded<S>, FetchResult, Answer>, Guarded<S>>;

/// The layers' shared state, built once from the settings.
#[derive(Clone)]
struct Layers {
    coalesce: Option<CoalesceLayer<FetchResult, Answer>>,
    retry: RetryPolicy,
    breaker: Arc<CircuitBreaker>,
    slots: SlotsLayer,
    metrics: Arc<Metrics>,
    peer: Arc<Peer>,
}

impl Layers {
    /// The one place the stack reads its settings.
    fn new(settings: &UpstreamSettings, metrics: Metrics) -> Self {
        Self::with_breaker(settings, metrics, CircuitBreaker::new(&settings.breaker))
    }

    /// As [`Layers::new`], with a breaker of the caller's (the sandbox's
    /// never opens).
    fn with_breaker(
        settings: &UpstreamSettings,
        metrics: Metrics,
        breaker: CircuitBreaker,
    ) -> Self {
        let metrics = Arc::new(metrics);
        Self {
            coalesce: settings
                .coalesce
                .then(|| CoalesceLayer::new(Arc::clone(&metrics))),
            retry: RetryPolicy::new(&settings.retry),
            breaker: Arc::new(breaker),
            slots: SlotsLayer::new(*settings.max_connections, *settings.timeout / 2),
            metrics,
            peer: Arc::new(Peer::new(&settings.base_url)),
        }
    }

    /// The result call, outermost first: coalescing, then what every call
    /// goes through.
    fn result_stack<S>(&self, attempt: S) -> ResultStack<S> {
        ServiceBuilder::new()
            .option_layer(self.coalesce.clone())
            .service(self.guarded(attempt))
    }

    /// Every call's own request, outermost first: retries, the breaker
    /// around each attempt, a connection slot, attempt metrics. The submit
    /// call is just this: a submit is never shared.
    fn guarded<S>(&self, attempt: S) -> Guarded<S> {
        ServiceBuilder::new()
            .layer(RetryLayer::new(self.retry.clone()))
            .layer(BreakerLayer::new(Arc::clone(&self.breaker)))
            .layer(self.slots.clone())
            .layer(AttemptMetricsLayer::new(
                Arc::clone(&self.metrics),
                Arc::clone(&self.peer),
            ))
            .service(attempt)
    }
}

/// The upstream as the service sees it. Cheap to clone; each call clones
/// the stack (a few reference counts).
#[derive(Clone)]
pub struct Upstream {
    results: ResultStack<UpstreamClient>,
    /// The result call without coalescing, for the waits' polls: they are
    /// shared per reference id already, and a coalesced request would cost
    /// each poll a task and a channel more (2.2 KiB while it queues).
    polled: Guarded<UpstreamClient>,
    submits: Guarded<UpstreamClient>,
    breaker: Arc<CircuitBreaker>,
    polls: Polls,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("circuit", &self.circuit_phase())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// Builds the stack and the client. The settings were validated when
    /// loaded, so only the HTTP client's setup can still fail.
    pub fn new(
        settings: &UpstreamSettings,
        wait: &WaitSettings,
        metrics: Metrics,
    ) -> Result<Self, BuildError> {
        Self::build(settings, wait, Layers::new(settings, metrics))
    }

    /// [`Upstream::new`] for the embedded sandbox: its circuit never opens,
    /// so that one magic id simulating an outage (`REFERENCE_ID_ERROR_SERVER`,
    /// `…_SLOW`) cannot make every other id fail fast.
    pub fn for_sandbox(
        settings: &UpstreamSettings,
        wait: &WaitSettings,
        metrics: Metrics,
    ) -> Result<Self, BuildError> {
        let layers = Layers::with_breaker(settings, metrics, CircuitBreaker::never_opening());
        Self::build(settings, wait, layers)
    }

    fn build(
        settings: &UpstreamSettings,
        wait: &WaitSettings,
        layers: Layers,
    ) -> Result<Self, BuildError> {
        let client = UpstreamClient::new(settings)?;
        Ok(Self {
            results: layers.result_stack(client.clone()),
            polled: layers.guarded(client.clone()),
            submits: layers.guarded(client),
            breaker: layers.breaker,
            polls: Polls::new(wait, (*layers.metrics).clone()),
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
        let op = FetchResult::new(reference_id.clone(), trace.cloned());
        self.results.clone().oneshot(Call::new(op, deadline)).await
    }

    /// Starts one OCR job. `deadline` is the caller's; retries (with the
    /// same reference id) never start past it.
    pub async fn submit(
        &self,
        job: SubmitJob,
        deadline: Option<Instant>,
    ) -> Result<Submitted, UpstreamError> {
        let submitted = self.submits.clone().oneshot(Call::new(job, deadline)).await;
        if let Ok(job) = &submitted {
            self.polls.submitted(&job.reference_id);
        }
        submitted
    }

    /// Fetches one job's result, asking again while it is not found (not
    /// finished yet) until `until`; concurrent waiters for one id share each
    /// poll. Dropping the future stops this caller's waiting at once;
    /// [`Upstream::stop_waiting`] hands it back.
    pub async fn wait_for_result(
        &self,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> Waited {
        // The wait is a span of its own, its polls' parent; it ends with
        // the wait, even one its caller abandons. Boxed, and only when
        // spans are exported: the wait's future holds one pointer for it.
        let own = trace.and_then(|t| {
            let span = t.span.as_ref()?.internal("wait");
            Some(Box::new((t.under(span.clone()), EndOnDrop(span))))
        });
        let trace = own.as_ref().map(|own| &own.0).or(trace);
        self.polls.wait(self, reference_id, until, trace).await
    }

    /// Hands every waiting call back ([`Waited::HandedBack`]), and any
    /// that starts waiting from now on: the server's shutdown, once its
    /// drain delay is over.
    pub fn stop_waiting(&self) {
        self.polls.stop_waiting();
    }

    /// The circuit breaker's current phase.
    pub fn circuit_phase(&self) -> Phase {
        self.breaker.phase()
    }
}

/// Ends a span when dropped.
struct EndOnDrop(SpanHandle);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A wait's polls are result calls through the whole stack.
impl wait::Fetch for Upstream {
    fn fetch(
        &self,
        reference_id: &ReferenceId,
        until: Instant,
        trace: Option<&TraceContext>,
    ) -> impl Future<Output = Answer> + Send {
        let op = FetchResult::new(reference_id.clone(), trace.cloned());
        self.polled.clone().oneshot(Call::new(op, Some(until)))
    }
}
