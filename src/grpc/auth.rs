//! Bearer-token authentication as a tower layer in front of the KTP service
//! (a no-op when `auth.tokens_file` is unset). A refused call is answered
//! here, before its request message is even decoded; the surrounding
//! [`super::call::CallLayer`] records it like any other call.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};
use tower::Layer;

use super::call::Call;
use crate::{error::GatewayError, security::auth::BearerTokens};

/// Checks `authorization: Bearer <token>` against the configured tokens.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    tokens: Option<Arc<BearerTokens>>,
}

impl AuthLayer {
    /// `None`: every call is admitted (no `auth.tokens_file`).
    pub fn new(tokens: Option<BearerTokens>) -> Self {
        Self {
            tokens: tokens.map(Arc::new),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Authenticated<S> {
        Authenticated {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Option<Arc<BearerTokens>>,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Authenticated<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Unpin,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(tokens) = &self.tokens {
            let header = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or(""));
            let call = Call::of_http(&request);
            match tokens.check(header) {
                Ok(caller) => call.set_caller(caller),
                Err(why) => {
                    let refused = call.fail(&GatewayError::Unauthenticated(why));
                    return AuthFuture::Refused(Some(refused.into_http()));
                }
            }
        }
        AuthFuture::Admitted(self.inner.call(request))
    }
}

/// The answer of [`Authenticated`]: a refusal, or the inner service's.
#[derive(Debug)]
pub enum AuthFuture<F> {
    /// The refusal, already rendered; an `Option` so that the first poll can
    /// take it.
    Refused(Option<http::Response<Body>>),
    /// The inner service's future, polled through.
    Admitted(F),
}

impl<F, E> Future for AuthFuture<F>
where
    F: Future<Output = Result<http::Response<Body>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            Self::Refused(response) => Poll::Ready(Ok(response.take().unwrap_or_default())),
            Self::Admitted(inner) => Pin::new(inner).poll(cx),
        }
    }
}
