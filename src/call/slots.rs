//! [`ImageSlots`]: a method's own cap on calls in flight (the image calls'
//! `submit.max_in_flight`, which bounds the memory images take), a gate
//! placed after authentication: a caller without a valid token never takes
//! a slot, and the slot is taken before the body, whose arrival the call
//! layer bounds in time.

use std::sync::Arc;

use tonic::codegen::http;

use super::{Call, gate::Admission};
use crate::{
    error::{GatewayError, Scope},
    resilience::overload::InFlightLimit,
};

/// The methods with a cap of their own, by full name, and their caps.
#[derive(Debug, Clone, Default)]
pub struct ImageSlots {
    methods: Arc<Vec<(&'static str, InFlightLimit)>>,
}

impl ImageSlots {
    /// `methods`: each capped method and its cap.
    pub fn new(methods: Vec<(&'static str, InFlightLimit)>) -> Self {
        Self {
            methods: Arc::new(methods),
        }
    }
}

/// Gives each call of a capped method one of its slots, or refuses it
/// (RESOURCE_EXHAUSTED `OVERLOADED`, scope `submits`).
impl Admission for ImageSlots {
    fn admit(&self, call: &Call, path: &str, _: &http::HeaderMap) -> Result<(), GatewayError> {
        let Some((_, limit)) = self.methods.iter().find(|(m, _)| *m == path) else {
            return Ok(());
        };
        // The call's until its handler releases it (the image is gone), at
        // the latest when the call ends.
        let permit = limit.try_admit().ok_or(GatewayError::Overloaded {
            scope: Scope::Submits,
            limit: limit.limit(),
        })?;
        call.hold_slot(permit);
        Ok(())
    }
}
