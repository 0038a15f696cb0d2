//! [`SlotLayer`]: a method's own cap on calls in flight (the image calls'
//! `submit.max_in_flight`, which bounds the memory images take), placed
//! after authentication: a caller without a valid token never takes a
//! slot, and the slot is taken before the body, whose arrival the call
//! layer bounds in time.

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

use super::{Call, Gated};
use crate::{
    error::{GatewayError, Scope},
    resilience::overload::InFlightLimit,
};

/// The methods with a cap of their own, by full name.
pub type MethodSlots = Vec<(&'static str, InFlightLimit)>;

/// Gives each call of a capped method one of its slots, or refuses it
/// (RESOURCE_EXHAUSTED `OVERLOADED`).
#[derive(Debug, Clone, Default)]
pub struct SlotLayer {
    methods: Arc<MethodSlots>,
}

impl SlotLayer {
    /// `methods`: each capped method and its cap.
    pub fn new(methods: MethodSlots) -> Self {
        Self {
            methods: Arc::new(methods),
        }
    }
}

impl<S> Layer<S> for SlotLayer {
    type Service = Slotted<S>;

    fn layer(&self, inner: S) -> Slotted<S> {
        Slotted {
            inner,
            methods: Arc::clone(&self.methods),
        }
    }
}

/// The service [`SlotLayer`] makes.
#[derive(Debug, Clone)]
pub struct Slotted<S> {
    inner: S,
    methods: Arc<MethodSlots>,
}

impl<S: NamedService> NamedService for Slotted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Slotted<S>
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
        let path = request.uri().path();
        if let Some((_, limit)) = self.methods.iter().find(|(m, _)| *m == path) {
            let call = Call::of_http(&request);
            match limit.try_admit() {
                // The call's until its handler releases it (the image is
                // gone), at the latest when the call ends.
                Some(permit) => call.hold_slot(permit),
                None => {
                    let refused = call.fail(&GatewayError::Overloaded {
                        scope: Scope::Submits,
                        limit: limit.limit(),
                    });
                    return Gated::Refused(Some(refused.into_http()));
                }
            }
        }
        Gated::Admitted(self.inner.call(request))
    }
}
