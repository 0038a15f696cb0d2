//! [`Gate`]: a layer that may refuse a call before the service it wraps
//! sees it (authentication, an image call's slot). The check is an
//! [`Admission`]; a refusal is rendered by the call itself, so the
//! surrounding [`super::CallLayer`] records it like any other call.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};
use tower::Layer;

use super::Call;
use crate::error::GatewayError;

/// What a gate checks of each call: its path and headers, and what the
/// call holds once admitted.
pub trait Admission: Clone {
    /// Admits the call (taking what it needs on `call`), or says why not.
    fn admit(&self, call: &Call, path: &str, headers: &http::HeaderMap)
    -> Result<(), GatewayError>;
}

/// Wraps a service in the gate of `A`.
#[derive(Debug, Clone)]
pub struct GateLayer<A> {
    admission: A,
}

impl<A> GateLayer<A> {
    /// A gate that admits calls by `admission`.
    pub fn new(admission: A) -> Self {
        Self { admission }
    }
}

impl<S, A: Clone> Layer<S> for GateLayer<A> {
    type Service = Gate<S, A>;

    fn layer(&self, inner: S) -> Gate<S, A> {
        Gate {
            inner,
            admission: self.admission.clone(),
        }
    }
}

/// The service [`GateLayer`] makes.
#[derive(Debug, Clone)]
pub struct Gate<S, A> {
    inner: S,
    admission: A,
}

impl<S: NamedService, A> NamedService for Gate<S, A> {
    const NAME: &'static str = S::NAME;
}

impl<S, A, B> Service<http::Request<B>> for Gate<S, A>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Unpin,
    A: Admission,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Gated<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Call::of_http(&request);
        match self
            .admission
            .admit(&call, request.uri().path(), request.headers())
        {
            Ok(()) => Gated::Admitted(self.inner.call(request)),
            Err(refused) => Gated::Refused(Some(Box::new(call.fail(&refused).into_http()))),
        }
    }
}

/// The answer of a [`Gate`]: the refusal, already rendered, or the inner
/// service's answer.
#[derive(Debug)]
pub enum Gated<F> {
    /// The refusal; an `Option` so that the first poll can take it. Boxed:
    /// inline, it would size every admitted call's future for its whole
    /// life (a waiting call's for seconds).
    Refused(Option<Box<http::Response<Body>>>),
    /// The inner service's future, polled through.
    Admitted(F),
}

impl<F, E> Future for Gated<F>
where
    F: Future<Output = Result<http::Response<Body>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            Self::Refused(response) => {
                Poll::Ready(Ok(response.take().map(|r| *r).unwrap_or_default()))
            }
            Self::Admitted(inner) => Pin::new(inner).poll(cx),
        }
    }
}
