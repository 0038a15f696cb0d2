//! Bearer-token authentication as a gate in front of the KTP service (and
//! reflection, when tokens are set; it admits everyone when
//! `auth.tokens_file` is unset). A refused call is answered here, before its
//! request message is even decoded; the surrounding
//! [`super::CallLayer`] records it like any other call.

use std::sync::Arc;

use tonic::codegen::http;

use super::{Admission, Call, GateLayer};
use crate::{error::GatewayError, security::auth::BearerTokens};

/// Checks `authorization: Bearer <token>` against the configured tokens.
#[derive(Debug, Clone)]
pub struct Tokens(Option<Arc<BearerTokens>>);

/// The gate of [`Tokens`]: `None` admits every call (no `auth.tokens_file`).
pub fn layer(tokens: Option<BearerTokens>) -> GateLayer<Tokens> {
    GateLayer::new(Tokens(tokens.map(Arc::new)))
}

impl Admission for Tokens {
    fn admit(&self, call: &Call, _: &str, headers: &http::HeaderMap) -> Result<(), GatewayError> {
        let Some(tokens) = &self.0 else {
            return Ok(());
        };
        let header = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        let caller = tokens.check(header)?;
        call.set_caller(caller);
        Ok(())
    }
}
