//! [`Call::answer`]'s future: a use case's work within the caller's
//! deadline, its error rendered by the call.

use std::sync::Arc;

use tonic::Status;

use super::{Call, Outcome};
use crate::error::GatewayError;

impl Call {
    /// Runs the handler's work within the caller's deadline and answers:
    /// `Ok` as is, an error as its error-table row. Giving up at the
    /// deadline drops the work, and with it any upstream request.
    ///
    /// A named future rather than an `async` block: a block keeps the work
    /// it captured apart from the work it awaits, twice the size, and a
    /// waiting call's future lives for seconds (`bench/README.md`,
    /// "waiting calls"). It owns the call, so a handler's boxed future
    /// holds this and nothing else of the request.
    pub fn answer<W, T>(self: Arc<Self>, work: W) -> Answered<W>
    where
        W: Future<Output = Result<T, GatewayError>>,
    {
        let work = match self.deadline {
            Some(at) => Bounded::Timed {
                work: tokio::time::timeout_at(at, work),
            },
            None => Bounded::Open { work },
        };
        Answered { work, call: self }
    }
}

pin_project_lite::pin_project! {
    /// A handler's work, answered: [`Call::answer`].
    pub struct Answered<W> {
        #[pin]
        work: Bounded<W>,
        call: Arc<Call>,
    }
}

impl<W, T> Future for Answered<W>
where
    W: Future<Output = Result<T, GatewayError>>,
{
    type Output = Result<T, Status>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.work.poll(cx).map(|done| match done {
            Ok(message) => {
                let _ = this.call.outcome.set(Outcome::Ok);
                Ok(message)
            }
            Err(err) => Err(this.call.fail(&err)),
        })
    }
}

pin_project_lite::pin_project! {
    /// A handler's work, with the caller's deadline or without one.
    #[project = BoundedProj]
    pub(super) enum Bounded<F> {
        Timed { #[pin] work: tokio::time::Timeout<F> },
        Open { #[pin] work: F },
    }
}

impl<F, T> Future for Bounded<F>
where
    F: Future<Output = Result<T, GatewayError>>,
{
    type Output = Result<T, GatewayError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            BoundedProj::Timed { work } => work
                .poll(cx)
                .map(|done| done.unwrap_or(Err(GatewayError::DeadlineExceeded))),
            BoundedProj::Open { work } => work.poll(cx),
        }
    }
}
