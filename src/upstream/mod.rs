//! The upstream REST client: the one place that knows the vendor speaks HTTP.
//!
//! - [`stack`]: [`Upstream`], the call as a tower stack, outermost first:
//!   coalescing → retries → circuit breaker → attempt metrics → one attempt.
//! - [`result`]: the result call's request and its one attempt.
//! - [`submit`]: the submit call's request (built once), its one attempt and
//!   reading its answer.
//! - [`wait`]: waiting for an unfinished job, one shared poll per reference id.
//! - [`client`]: the pooled reqwest client and what every attempt shares:
//!   credentials, timeout, connection cap, body cap, `Retry-After`.
//! - [`attempts`]: the metrics of each attempt, as a layer.
//! - [`attempt_span`]: each attempt's span and the `traceparent` naming it.
//! - [`model`]: reading answers leniently into [`KtpResult`] or [`UpstreamError`].
//! - [`error`]: [`UpstreamError`] and what each failure means to retries,
//!   the breaker and the metrics.

pub mod attempt_span;
pub mod attempts;
pub mod client;
pub mod error;
pub mod model;
pub mod result;
pub mod stack;
pub mod submit;
pub mod wait;

pub use client::{BuildError, UpstreamClient};
pub use error::{BodyProblem, UpstreamError};
pub use model::{ImageQualityFlags, KtpData, KtpResult};
pub use stack::Upstream;
