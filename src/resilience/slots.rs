//! The cap on requests in flight to the upstream (`upstream.max_connections`)
//! as a layer just outside the attempt, so that waiting for a slot is the
//! gateway's own saturation, never the upstream's: a call that gets no slot
//! within `max_wait` ends with the error's "no slot" value, which is not a
//! breaker failure, not an attempt in the metrics below, and not retried;
//! the attempt's own timeout and latency start once it holds a slot.
//!
//! `max_wait` is half of `upstream.timeout`: queued calls give up before the
//! requests holding the slots can time out, so a slow upstream behind a
//! burst costs the burst OVERLOADED answers, not a chain of late attempts
//! that each wait out the timeout again.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service, ServiceExt};

use super::call::Failure;

/// Shares one set of slots among every service it wraps (the result and
/// the submit call draw from the same connections).
#[derive(Debug, Clone)]
pub struct SlotsLayer {
    slots: Arc<Semaphore>,
    limit: usize,
    max_wait: Duration,
}

impl SlotsLayer {
    /// At most `limit` requests at once; a request waits at most `max_wait`
    /// for a free slot.
    pub fn new(limit: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            max_wait,
        }
    }
}

impl<S> Layer<S> for SlotsLayer {
    type Service = Slots<S>;

    fn layer(&self, inner: S) -> Slots<S> {
        Slots {
            inner,
            shared: self.clone(),
        }
    }
}

/// See [`SlotsLayer`].
#[derive(Debug, Clone)]
pub struct Slots<S> {
    inner: S,
    shared: SlotsLayer,
}

/// A request that had to queue for its slot. Boxed, but only then: the
/// usual request finds a free slot and allocates nothing here.
type Queued<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R> Service<R> for Slots<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Failure,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = SlotFuture<S::Future, S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // A free slot is taken at once (never ahead of a queued request:
        // tokio's semaphore hands released slots to waiters first).
        if let Ok(permit) = Arc::clone(&self.shared.slots).try_acquire_owned() {
            return SlotFuture::Held {
                attempt: self.inner.call(request),
                permit: Some(permit),
            };
        }
        let SlotsLayer {
            slots,
            limit,
            max_wait,
        } = self.shared.clone();
        let inner = self.inner.clone();
        SlotFuture::Queued {
            queued: Box::pin(async move {
                let permit = match tokio::time::timeout(max_wait, slots.acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    // Timed out, or the semaphore closed (it never is).
                    _ => return Err(S::Error::no_slot(limit)),
                };
                let answer = inner.oneshot(request).await;
                drop(permit);
                answer
            }),
        }
    }
}

pin_project! {
    /// An attempt holding its slot until it ends, or one queued for a slot.
    #[project = SlotProj]
    #[allow(missing_docs, reason = "pin_project! takes no doc comments on a variant's fields")]
    pub enum SlotFuture<F, T, E> {
        /// A slot was free.
        Held {
            #[pin]
            attempt: F,
            permit: Option<OwnedSemaphorePermit>,
        },
        /// Waiting for a slot, then the attempt.
        Queued {
            queued: Queued<T, E>,
        },
    }
}

impl<F, T, E> Future for SlotFuture<F, T, E>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SlotProj::Held { attempt, permit } => {
                let answer = std::task::ready!(attempt.poll(cx));
                // The slot is free as soon as the answer is in.
                permit.take();
                Poll::Ready(answer)
            }
            SlotProj::Queued { queued } => queued.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::testing::{Fault, Script, Step, call};

    #[tokio::test(start_paused = true)]
    async fn a_request_without_a_slot_in_time_is_refused_and_never_sent() {
        let script = Script::new([
            Step::after(Duration::from_secs(3), Ok(1)),
            Step::after(Duration::from_millis(10), Ok(2)),
        ]);
        let service = SlotsLayer::new(1, Duration::from_millis(500)).layer(script.clone());
        let holder = tokio::spawn(service.clone().oneshot(call::<Fault>("a", None)));
        tokio::task::yield_now().await;
        let refused = service.clone().oneshot(call("b", None)).await;
        assert_eq!(refused, Err(Fault::NoSlot(1)));
        assert_eq!(script.calls(), 1, "the refused request was never sent");
        assert_eq!(holder.await.unwrap(), Ok(1));
        // The slot is free again once the holder has its answer.
        assert_eq!(service.oneshot(call("c", None)).await, Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_queued_request_goes_when_a_slot_frees_in_time() {
        let script = Script::new([
            Step::after(Duration::from_millis(200), Ok(1)),
            Step::after(Duration::from_millis(10), Ok(2)),
        ]);
        let service = SlotsLayer::new(1, Duration::from_millis(500)).layer(script.clone());
        let first = service.clone().oneshot(call::<Fault>("a", None));
        let second = service.oneshot(call("b", None));
        assert_eq!(tokio::join!(first, second), (Ok(1), Ok(2)));
        let seen = script.seen();
        assert_eq!(
            seen[1].at - seen[0].at,
            Duration::from_millis(200),
            "in turn"
        );
    }
}
