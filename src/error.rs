//! The domain error of one `GetKtpResult` call. Converted to a gRPC status in
//! exactly one place, the [`crate::mapping`] module ([`crate::mapping::classify`]
//! picks the row, [`crate::mapping::render`] builds the status).

use crate::{
    reference_id::InvalidReferenceId, security::auth::Unauthenticated, upstream::UpstreamError,
};

/// Everything that can make a call fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// Rejected before any upstream call.
    #[error(transparent)]
    InvalidReferenceId(#[from] InvalidReferenceId),
    /// The upstream call failed or answered an error.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The caller's `grpc-timeout` ran out before the upstream answered; the
    /// upstream request was dropped.
    #[error("the caller's deadline ran out before the upstream answered")]
    DeadlineExceeded,
    /// `auth.tokens_file` is set and the call's bearer token is missing or wrong.
    #[error(transparent)]
    Unauthenticated(#[from] Unauthenticated),
    /// `server.max_in_flight` calls were already in flight; shed at once.
    #[error("the gateway is at its limit of {limit} calls in flight")]
    Overloaded { limit: usize },
    /// The gRPC layer refused the request message before the call's own
    /// code ran (over the size limit, not protobuf, not UTF-8).
    #[error(transparent)]
    Malformed(#[from] MalformedRequest),
}

/// What tonic answered when it refused a request message itself.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the request message was refused: {message}")]
pub struct MalformedRequest {
    pub code: tonic::Code,
    pub message: String,
}
