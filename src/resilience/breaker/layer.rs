//! The breaker as a tower layer: it admits each attempt or refuses it with
//! the error's "circuit open" value, and records how each admitted attempt
//! ended.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{CircuitBreaker, Outcome};
use crate::resilience::call::Failure;

/// Wraps a service in the shared [`CircuitBreaker`].
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    breaker: Arc<CircuitBreaker>,
}

impl BreakerLayer {
    /// Every service the layer wraps shares `breaker`.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Breaker<S> {
        Breaker {
            inner,
            breaker: Arc::clone(&self.breaker),
        }
    }
}

/// See [`BreakerLayer`].
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    breaker: Arc<CircuitBreaker>,
}

impl<S, R> Service<R> for Breaker<S>
where
    S: Service<R>,
    S::Error: Failure,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BreakerFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // Refusing here rather than in `poll_ready`, so that the refusal is
        // an answer the retry policy sees, not an error of the service.
        match self.breaker.admit() {
            Ok(()) => BreakerFuture::Admitted {
                attempt: self.inner.call(request),
                breaker: Arc::clone(&self.breaker),
            },
            Err(retry_in) => BreakerFuture::Refused {
                error: Some(S::Error::circuit_open(retry_in)),
            },
        }
    }
}

pin_project! {
    /// An admitted attempt, recorded when it ends (an attempt dropped before
    /// it ends records nothing), or a refusal.
    #[project = BreakerProj]
    #[allow(missing_docs, reason = "pin_project! takes no doc comments on a variant's fields")]
    pub enum BreakerFuture<F, E> {
        /// The attempt went out.
        Admitted {
            #[pin]
            attempt: F,
            breaker: Arc<CircuitBreaker>,
        },
        /// The open circuit refused it; the error until it is taken.
        Refused {
            error: Option<E>,
        },
    }
}

impl<F, T, E> Future for BreakerFuture<F, E>
where
    F: Future<Output = Result<T, E>>,
    E: Failure,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            BreakerProj::Admitted { attempt, breaker } => {
                let answer = ready!(attempt.poll(cx));
                breaker.record(match &answer {
                    Ok(_) => Outcome::Success,
                    Err(e) => e.breaker_outcome(),
                });
                Poll::Ready(answer)
            }
            BreakerProj::Refused { error } => match error.take() {
                Some(e) => Poll::Ready(Err(e)),
                // Polled again after it answered: a bug of the caller.
                None => Poll::Pending,
            },
        }
    }
}
