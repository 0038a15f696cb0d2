//! The upstream REST client: the one place that knows the vendor speaks HTTP.
//!
//! - [`resilient`]: [`Upstream`], the call with its resilience stack (coalescing,
//!   circuit breaker, retries) around one attempt.
//! - [`client`]: one attempt: the pooled reqwest client, the request shape and its limits.
//! - [`model`]: reading answers leniently into [`KtpResult`] or [`UpstreamError`].

use std::time::Duration;

pub mod client;
pub mod model;
pub mod resilient;

pub use client::UpstreamClient;
pub use model::{ImageQualityFlags, KtpData, KtpResult};
pub use resilient::Upstream;

/// What went wrong talking to the upstream: facts only. What they mean to a
/// gRPC caller is decided in [`crate::mapping`].
///
/// Messages never carry body content: the upstream's text may echo personal data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// A 2xx answer whose body names a job error (`error_code` at the top level).
    #[error("the OCR job failed upstream with {code}")]
    JobFailed {
        status: u16,
        code: String,
        image_quality: Option<ImageQualityFlags>,
    },
    /// A non-2xx answer.
    #[error("the upstream answered HTTP {status}")]
    Status {
        status: u16,
        error_code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// `upstream.timeout` elapsed before the whole answer arrived; `status`
    /// if the response head had arrived.
    #[error("the upstream did not answer within {limit:?}")]
    Timeout {
        limit: Duration,
        status: Option<u16>,
    },
    /// No complete HTTP answer: connection refused, reset (also mid-body,
    /// after `status`), TLS failure, connect timeout.
    #[error("the upstream could not be reached: {detail}")]
    Transport { status: Option<u16>, detail: String },
    /// The circuit breaker is open: recent attempts failed, so this call was
    /// not sent. `retry_in` is the rest of the cool-down.
    #[error("the upstream circuit is open; not calling it for {retry_in:?}")]
    CircuitOpen { retry_in: Duration },
    /// An answer the gateway cannot use.
    #[error("the upstream's HTTP {status} answer is unusable: {problem}")]
    BadResponse { status: u16, problem: BodyProblem },
}

/// Why a body was unusable. Deliberately coarse: parser messages quote the
/// offending value, which may be personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyProblem {
    #[error("body larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("body is not valid JSON")]
    NotJson,
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("a field has the wrong JSON type or value")]
    WrongShape,
    #[error("success answer without data")]
    NoData,
}

impl BodyProblem {
    /// A stable name for error metadata and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotJson => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::WrongShape => "wrong_shape",
            Self::NoData => "no_data",
        }
    }
}
