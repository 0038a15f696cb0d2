//! What can go wrong talking to the upstream, and what each failure means to
//! the resilience layers: retry or not, breaker outcome, `Retry-After`,
//! metric label. That classification is here and nowhere else.

use std::time::Duration;

use super::ImageQualityFlags;
use crate::{
    metrics::AttemptOutcome,
    resilience::{Failure, breaker::Outcome},
};

/// What went wrong talking to the upstream: facts only. What they mean to a
/// gRPC caller is decided in [`crate::status`].
///
/// Messages never carry body content: the upstream's text may echo personal data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// A 2xx answer whose body names a job error (`error_code` at the top level).
    #[error("the OCR job failed upstream with {code}")]
    JobFailed {
        /// The HTTP status (a 2xx), for error metadata.
        status: u16,
        /// The `error_code`, verbatim: it becomes the reason a caller sees.
        code: String,
        /// The quality flags, which say why a `FAIL_ON_1` failed.
        image_quality: Option<ImageQualityFlags>,
    },
    /// A non-2xx answer.
    #[error("the upstream answered HTTP {status}")]
    Status {
        /// The HTTP status, which decides most of the mapping.
        status: u16,
        /// The top-level `error_code` of the body, if it had a usable one.
        error_code: Option<String>,
        /// `Retry-After`, capped, for the retry policy and `RetryInfo`.
        retry_after: Option<Duration>,
    },
    /// `upstream.timeout` elapsed before the whole answer arrived; `status`
    /// if the response head had arrived.
    #[error("the upstream did not answer within {limit:?}")]
    Timeout {
        /// `upstream.timeout`, for the message.
        limit: Duration,
        /// The HTTP status, when the head arrived before the timeout.
        status: Option<u16>,
    },
    /// No complete HTTP answer: connection refused, reset (also mid-body,
    /// after `status`), TLS failure, connect timeout.
    #[error("the upstream could not be reached: {detail}")]
    Transport {
        /// The HTTP status, when the cut came after the response head.
        status: Option<u16>,
        /// The error chain, for logs: without the URL (it holds the
        /// reference id) and never body text.
        detail: String,
    },
    /// The circuit breaker is open: recent attempts failed, so this call was
    /// not sent. `retry_in` is the rest of the cool-down.
    #[error("the upstream circuit is open; not calling it for {retry_in:?}")]
    CircuitOpen {
        /// The rest of the cool-down, sent as `RetryInfo`.
        retry_in: Duration,
    },
    /// None of the `upstream.max_connections` slots for requests in flight
    /// came free in time, so nothing was sent: the gateway's own saturation,
    /// not the upstream's failure.
    #[error("all {limit} upstream connection slots stayed busy; nothing was sent")]
    NoSlot {
        /// `upstream.max_connections`, for the caller's `ErrorInfo`.
        limit: usize,
    },
    /// The shared (coalesced) request this call waited on ended without an
    /// answer: it panicked or was aborted. A bug of the gateway, not the
    /// upstream's failure.
    #[error("the shared upstream request ended without an answer (it panicked or was aborted)")]
    FlightLost,
    /// An answer the gateway cannot use.
    #[error("the upstream's HTTP {status} answer is unusable: {problem}")]
    BadResponse {
        /// The HTTP status of the unusable answer.
        status: u16,
        /// What was wrong with the body, coarsely.
        problem: BodyProblem,
    },
}

/// Why a body was unusable. Deliberately coarse: parser messages quote the
/// offending value, which may be personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyProblem {
    /// Over `upstream.max_body_bytes`; reading stopped there.
    #[error("body larger than the {limit}-byte limit")]
    TooLarge {
        /// `upstream.max_body_bytes`.
        limit: usize,
    },
    /// Not JSON at all (a proxy's HTML page, a cut body).
    #[error("body is not valid JSON")]
    NotJson,
    /// JSON, but not an object.
    #[error("body is not a JSON object")]
    NotAnObject,
    /// A known field of the wrong type (`nik` as a number, say).
    #[error("a field has the wrong JSON type or value")]
    WrongShape,
    /// A success without the `data` object that would hold the result.
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

impl UpstreamError {
    /// The attempt's outcome and HTTP status, as metric labels.
    pub fn attempt_outcome(&self) -> (AttemptOutcome, Option<u16>) {
        match self {
            Self::JobFailed { status, .. } => (AttemptOutcome::JobError, Some(*status)),
            Self::Status { status, .. } => (AttemptOutcome::HttpError, Some(*status)),
            Self::Timeout { status, .. } => (AttemptOutcome::Timeout, *status),
            Self::Transport { status, .. } => (AttemptOutcome::TransportError, *status),
            Self::BadResponse { status, .. } => (AttemptOutcome::BadResponse, Some(*status)),
            // Never sent: the breaker and slot layers answer before any
            // attempt, so the attempt metrics never see these.
            Self::CircuitOpen { .. } | Self::NoSlot { .. } | Self::FlightLost => {
                (AttemptOutcome::TransportError, None)
            }
        }
    }
}

impl Failure for UpstreamError {
    /// Connection errors, timeouts and 5xx count against the upstream's
    /// health, a 429 says nothing (it is up, and busy), anything else is a
    /// sign of life.
    fn breaker_outcome(&self) -> Outcome {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => Outcome::Failure,
            Self::Status {
                status: 500 | 502 | 503 | 504,
                ..
            } => Outcome::Failure,
            // The gateway's own saturation (or bug) says nothing about the upstream.
            Self::Status { status: 429, .. }
            | Self::CircuitOpen { .. }
            | Self::NoSlot { .. }
            | Self::FlightLost => Outcome::Neutral,
            _ => Outcome::Success,
        }
    }

    /// Connection errors, 429 and 500/502/503/504. Never other 4xx, job
    /// errors, timeouts (a slow upstream only gets slower with more load) or
    /// unusable bodies.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The attempt ended without its whole answer, and the request may have
    /// taken effect: no HTTP status came back, or a 2xx head did and the
    /// body was then lost (the upstream had accepted it), or a proxy's 502
    /// or 504 answered (it may have forwarded the request, and the vendor
    /// taken it, before its own upstream failed or timed out).
    /// Conservative: a connection refused before sending reads the same as
    /// one lost after, as the error does not tell them apart.
    fn outcome_unknown(&self) -> bool {
        match self {
            Self::Timeout { status, .. } | Self::Transport { status, .. } => {
                status.is_none_or(|s| (200..300).contains(&s))
            }
            Self::Status {
                status: 502 | 504, ..
            } => true,
            _ => false,
        }
    }

    fn circuit_open(retry_in: Duration) -> Self {
        Self::CircuitOpen { retry_in }
    }

    fn is_circuit_open(&self) -> bool {
        matches!(self, Self::CircuitOpen { .. })
    }

    fn no_slot(limit: usize) -> Self {
        Self::NoSlot { limit }
    }

    fn flight_lost() -> Self {
        Self::FlightLost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> UpstreamError {
        UpstreamError::Status {
            status,
            error_code: None,
            retry_after: None,
        }
    }

    #[test]
    fn retryable_errors_are_exactly_the_transient_ones() {
        for s in [429, 500, 502, 503, 504] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 501, 505] {
            assert!(!status(s).is_retryable(), "{s}");
        }
        assert!(
            UpstreamError::Transport {
                status: None,
                detail: "reset".into()
            }
            .is_retryable()
        );
        assert!(
            !UpstreamError::Timeout {
                limit: Duration::from_secs(1),
                status: None
            }
            .is_retryable()
        );
        assert!(
            !UpstreamError::JobFailed {
                status: 200,
                code: "X".into(),
                image_quality: None
            }
            .is_retryable()
        );
        assert!(
            !UpstreamError::BadResponse {
                status: 200,
                problem: BodyProblem::NotJson
            }
            .is_retryable()
        );
        assert!(!UpstreamError::circuit_open(Duration::from_secs(1)).is_retryable());
    }

    #[test]
    fn breaker_counts_outages_not_answers() {
        assert_eq!(status(503).breaker_outcome(), Outcome::Failure);
        assert_eq!(
            UpstreamError::Timeout {
                limit: Duration::ZERO,
                status: None
            }
            .breaker_outcome(),
            Outcome::Failure
        );
        assert_eq!(status(429).breaker_outcome(), Outcome::Neutral);
        assert_eq!(status(404).breaker_outcome(), Outcome::Success);
        assert_eq!(
            UpstreamError::no_slot(2).breaker_outcome(),
            Outcome::Neutral
        );
        assert!(!UpstreamError::no_slot(2).is_retryable());
        assert!(!UpstreamError::no_slot(2).outcome_unknown());
    }

    #[test]
    fn a_lost_answer_or_a_lost_acceptance_leaves_the_outcome_unknown() {
        let timeout = |status| UpstreamError::Timeout {
            limit: Duration::ZERO,
            status,
        };
        let cut = |status| UpstreamError::Transport {
            status,
            detail: String::new(),
        };
        assert!(timeout(None).outcome_unknown());
        assert!(cut(None).outcome_unknown());
        // A 2xx head was an acceptance whose body was lost.
        assert!(timeout(Some(200)).outcome_unknown());
        assert!(cut(Some(201)).outcome_unknown());
        assert!(!timeout(Some(503)).outcome_unknown());
        assert!(!cut(Some(503)).outcome_unknown());
        assert!(!status(503).outcome_unknown());
        assert!(!status(500).outcome_unknown());
        // A gateway's or proxy's failure: it may have forwarded the request.
        assert!(status(502).outcome_unknown());
        assert!(status(504).outcome_unknown());
        assert!(!UpstreamError::circuit_open(Duration::ZERO).outcome_unknown());
    }

    #[test]
    fn attempt_labels_name_the_outcome_and_status() {
        assert_eq!(
            status(404).attempt_outcome(),
            (AttemptOutcome::HttpError, Some(404))
        );
        assert_eq!(
            UpstreamError::Transport {
                status: None,
                detail: String::new()
            }
            .attempt_outcome(),
            (AttemptOutcome::TransportError, None)
        );
        assert_eq!(
            UpstreamError::Timeout {
                limit: Duration::ZERO,
                status: Some(200)
            }
            .attempt_outcome(),
            (AttemptOutcome::Timeout, Some(200))
        );
    }
}
