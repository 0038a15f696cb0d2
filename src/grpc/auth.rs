//! Bearer-token authentication as a tower layer in front of the KTP service
//! (a no-op when `auth.tokens_file` is unset). A refused call is answered
//! here, before its request message is even decoded; the surrounding
//! [`super::call::CallLayer`] records it like any other call.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::{
    body::Body,
    codegen::{Service, http},
    server::NamedService,
};
use tower::Layer;

use super::call::{Call, Gated};
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
    type Future = Gated<S::Future>;

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
                    return Gated::Refused(Some(refused.into_http()));
                }
            }
        }
        Gated::Admitted(self.inner.call(request))
    }
}
