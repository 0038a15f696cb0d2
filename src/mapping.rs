//! The error table: [`GatewayError`] → gRPC code, `ErrorInfo` reason and the
//! detail that fits. [`classify`] is the table, one arm per README row;
//! [`to_status`] renders a row as a `tonic::Status` with rich details.
//!
//! Reasons the upstream gave keep its spelling under [`UPSTREAM_DOMAIN`];
//! reasons the gateway makes up live under [`GATEWAY_DOMAIN`].

use std::{collections::HashMap, time::Duration};

use tonic::{Code, Status, metadata::MetadataValue};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    error::GatewayError, request_meta::REQUEST_ID_HEADER, security::auth::Unauthenticated,
    upstream::UpstreamError,
};

/// Domain of reasons the upstream gave (its `error_code`, verbatim).
pub const UPSTREAM_DOMAIN: &str = "api.verihubs.com";
/// Domain of reasons this gateway makes up.
pub const GATEWAY_DOMAIN: &str = "ktp-gateway";
/// Retry delay suggested when the upstream gave no `Retry-After`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The gateway's own reasons.
pub mod reason {
    pub const INVALID_REFERENCE_ID: &str = "INVALID_REFERENCE_ID";
    pub const UPSTREAM_AUTH_FAILED: &str = "UPSTREAM_AUTH_FAILED";
    pub const UPSTREAM_RATE_LIMITED: &str = "UPSTREAM_RATE_LIMITED";
    pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
    pub const UPSTREAM_TIMEOUT: &str = "UPSTREAM_TIMEOUT";
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    pub const UPSTREAM_BAD_RESPONSE: &str = "UPSTREAM_BAD_RESPONSE";
    pub const UPSTREAM_CIRCUIT_OPEN: &str = "UPSTREAM_CIRCUIT_OPEN";
    pub const OVERLOADED: &str = "OVERLOADED";
    pub const BEARER_TOKEN_MISSING: &str = "BEARER_TOKEN_MISSING";
    pub const BEARER_TOKEN_INVALID: &str = "BEARER_TOKEN_INVALID";
    pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
    pub const REQUEST_NOT_DECODABLE: &str = "REQUEST_NOT_DECODABLE";
    pub const REQUEST_REFUSED: &str = "REQUEST_REFUSED";
    /// Upstream codes the table names.
    pub const FAIL_ON_1: &str = "FAIL_ON_1";
    pub const KTP_NOT_DETECTED: &str = "KTP_NOT_DETECTED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const INSUFFICIENT_QUOTA: &str = "INSUFFICIENT_QUOTA";
    pub const INVALID_PAYLOAD_REFERENCE_ID: &str = "INVALID_PAYLOAD_REFERENCE_ID";
    pub const INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND: &str =
        "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND";
    /// The vendor sandbox's answer to an id that is not one of its magic values.
    pub const INVALID_SANDBOX_CODE: &str = "INVALID_SANDBOX_CODE";
}

/// The detail type a row adds beside `ErrorInfo` and `RequestInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    None,
    /// A `BadRequest` violation on `reference_id`.
    BadRequest(String),
    /// A `QuotaFailure` violation.
    QuotaFailure,
    /// A `ResourceInfo` naming the reference id.
    ResourceInfo,
    /// A `RetryInfo` with this delay.
    RetryInfo(Duration),
}

/// One row of the table, for one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub code: Code,
    pub reason: String,
    pub domain: &'static str,
    /// Human-readable; never holds personal data, credentials or body text.
    pub message: String,
    pub metadata: Vec<(&'static str, String)>,
    pub detail: Detail,
}

impl Row {
    fn new(code: Code, reason: &str, domain: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            domain,
            message: message.into(),
            metadata: Vec::new(),
            detail: Detail::None,
        }
    }
    fn upstream(code: Code, reason: &str, message: impl Into<String>) -> Self {
        Self::new(code, reason, UPSTREAM_DOMAIN, message)
    }
    fn gateway(code: Code, reason: &str, message: impl Into<String>) -> Self {
        Self::new(code, reason, GATEWAY_DOMAIN, message)
    }
    fn with(mut self, key: &'static str, value: impl ToString) -> Self {
        self.metadata.push((key, value.to_string()));
        self
    }
    fn with_http_status(self, status: u16) -> Self {
        self.with("upstream_http_status", status)
    }
    fn with_optional_http_status(self, status: Option<u16>) -> Self {
        match status {
            Some(s) => self.with_http_status(s),
            None => self,
        }
    }
    fn with_upstream_code(self, code: Option<&str>) -> Self {
        match code {
            Some(c) => self.with("upstream_error_code", c),
            None => self,
        }
    }
    fn detail(mut self, detail: Detail) -> Self {
        self.detail = detail;
        self
    }
}

/// The error table. Each arm is one README row; keep them in step.
pub fn classify(err: &GatewayError) -> Row {
    use reason::*;
    match err {
        GatewayError::InvalidReferenceId(why) => {
            Row::gateway(Code::InvalidArgument, INVALID_REFERENCE_ID, why.to_string())
                .with("constraint", why.constraint())
                .detail(Detail::BadRequest(why.to_string()))
        }
        GatewayError::DeadlineExceeded => Row::gateway(
            Code::DeadlineExceeded,
            DEADLINE_EXCEEDED,
            "the call's deadline ran out before the upstream answered",
        ),
        GatewayError::Unauthenticated(why) => {
            let reason = match why {
                Unauthenticated::Missing => BEARER_TOKEN_MISSING,
                Unauthenticated::Invalid => BEARER_TOKEN_INVALID,
            };
            Row::gateway(Code::Unauthenticated, reason, why.to_string())
        }
        GatewayError::Overloaded { limit } => Row::gateway(
            Code::ResourceExhausted,
            OVERLOADED,
            "the gateway is at its limit of calls in flight; retry with backoff",
        )
        .with("max_in_flight", limit),
        GatewayError::Upstream(up) => classify_upstream(up),
        // tonic's own codes for these (OUT_OF_RANGE, INTERNAL) would blame
        // the server or suggest a retry; the request is what is wrong.
        GatewayError::Malformed(m) => match m.code {
            Code::OutOfRange => Row::gateway(Code::InvalidArgument, REQUEST_TOO_LARGE, &m.message),
            Code::Internal => {
                Row::gateway(Code::InvalidArgument, REQUEST_NOT_DECODABLE, &m.message)
            }
            code => Row::gateway(code, REQUEST_REFUSED, &m.message),
        },
    }
}

fn classify_upstream(err: &UpstreamError) -> Row {
    use reason::*;
    match err {
        UpstreamError::JobFailed {
            status,
            code,
            image_quality,
        } => {
            let row = match code.as_str() {
                FAIL_ON_1 => Row::upstream(
                    Code::FailedPrecondition,
                    code,
                    "the KTP image failed the upstream's quality check; submit a better image",
                ),
                KTP_NOT_DETECTED => Row::upstream(
                    Code::FailedPrecondition,
                    code,
                    "the upstream found no KTP in the submitted image",
                ),
                INTERNAL_SERVER_ERROR => Row::upstream(
                    Code::Internal,
                    code,
                    "the OCR job failed inside the upstream",
                ),
                _ => Row::upstream(
                    Code::Unknown,
                    code,
                    "the OCR job failed upstream with an error code this gateway does not know",
                ),
            };
            let mut row = row.with_http_status(*status);
            if code == FAIL_ON_1 {
                for (flag, value) in image_quality.iter().flat_map(|q| q.present()) {
                    row = row.with(flag, value);
                }
            }
            row
        }
        UpstreamError::Status {
            status,
            error_code,
            retry_after,
        } => {
            let code = error_code.as_deref();
            let retry = Detail::RetryInfo(retry_after.unwrap_or(DEFAULT_RETRY_DELAY));
            let row = match (*status, code) {
                (400, Some(c @ INVALID_PAYLOAD_REFERENCE_ID)) => Row::upstream(
                    Code::InvalidArgument,
                    c,
                    "the upstream rejected the reference id (too short or too long)",
                )
                .detail(Detail::BadRequest("rejected by the upstream: too short or too long".into())),
                (400, Some(c @ INVALID_SANDBOX_CODE)) => Row::upstream(
                    Code::InvalidArgument,
                    c,
                    "the sandbox knows no such reference id; use one of its magic values",
                )
                .detail(Detail::BadRequest("not a sandbox magic value".into())),
                (401, _) => Row::gateway(
                    Code::Internal,
                    UPSTREAM_AUTH_FAILED,
                    "the upstream refused the gateway's credentials; the gateway's operators must fix them",
                )
                .with_upstream_code(code),
                (403, Some(INSUFFICIENT_QUOTA)) => Row::upstream(
                    Code::ResourceExhausted,
                    INSUFFICIENT_QUOTA,
                    "the gateway's upstream quota is used up",
                )
                .detail(Detail::QuotaFailure),
                (403, _) => Row::gateway(
                    Code::Internal,
                    UPSTREAM_AUTH_FAILED,
                    "the upstream forbade the gateway's credentials this call",
                )
                .with_upstream_code(code),
                (404, Some(c @ INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND)) => Row::upstream(
                    Code::NotFound,
                    c,
                    "no KTP result under this reference id (unknown, or the job has not finished)",
                )
                .detail(Detail::ResourceInfo),
                (429, _) => Row::gateway(
                    Code::Unavailable,
                    UPSTREAM_RATE_LIMITED,
                    "the upstream is rate limiting the gateway; retry after the suggested delay",
                )
                .with_upstream_code(code)
                .detail(retry),
                (500 | 502 | 503 | 504, Some(c)) => {
                    Row::upstream(Code::Unavailable, c, "the upstream failed; retry later").detail(retry)
                }
                (500 | 502 | 503 | 504, None) => Row::gateway(
                    Code::Unavailable,
                    UPSTREAM_UNAVAILABLE,
                    "the upstream failed; retry later",
                )
                .detail(retry),
                _ => Row::gateway(
                    Code::Internal,
                    UPSTREAM_BAD_RESPONSE,
                    "the upstream answered with an unexpected HTTP status",
                )
                .with_upstream_code(code),
            };
            row.with_http_status(*status)
        }
        UpstreamError::Transport { status, .. } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_UNAVAILABLE,
            "the upstream could not be reached; retry later",
        )
        .with_optional_http_status(*status)
        .detail(Detail::RetryInfo(DEFAULT_RETRY_DELAY)),
        UpstreamError::CircuitOpen { retry_in } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_CIRCUIT_OPEN,
            "the upstream is failing; the gateway is not calling it for a cool-down; retry later",
        )
        .detail(Detail::RetryInfo(*retry_in)),
        UpstreamError::Timeout { limit, status } => Row::gateway(
            Code::Unavailable,
            UPSTREAM_TIMEOUT,
            format!(
                "the upstream did not answer within {} ms; retry later",
                limit.as_millis()
            ),
        )
        .with_optional_http_status(*status)
        .detail(Detail::RetryInfo(DEFAULT_RETRY_DELAY)),
        UpstreamError::BadResponse { status, problem } => Row::gateway(
            Code::Internal,
            UPSTREAM_BAD_RESPONSE,
            format!("the upstream sent an unusable answer ({problem})"),
        )
        .with_http_status(*status)
        .with("problem", problem.as_str()),
    }
}

/// What the status and the call's log line need to know beyond the error.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallContext<'a> {
    pub request_id: &'a str,
    /// The requested reference id, when it passed validation.
    pub reference_id: Option<&'a str>,
    /// The caller's W3C trace id, for the log line.
    pub trace_id: Option<&'a str>,
}

/// The single conversion from domain error to `tonic::Status`.
pub fn to_status(err: &GatewayError, call: CallContext<'_>) -> Status {
    render(&classify(err), call)
}

/// Renders one row as a status with `ErrorInfo`, `RequestInfo`, the row's
/// detail, and the request id in `x-request-id` metadata.
pub fn render(row: &Row, call: CallContext<'_>) -> Status {
    let mut details = ErrorDetails::new();
    let metadata: HashMap<String, String> = row
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    details.set_error_info(row.reason.clone(), row.domain, metadata);
    details.set_request_info(call.request_id, "");
    match &row.detail {
        Detail::None => {}
        Detail::BadRequest(description) => {
            details.add_bad_request_violation("reference_id", description.clone());
        }
        Detail::QuotaFailure => {
            details.add_quota_failure_violation(
                "upstream App-ID of this gateway",
                "the upstream quota of the gateway's App-ID is used up",
            );
        }
        Detail::ResourceInfo => {
            details.set_resource_info(
                "ktp.v1.KtpResult",
                call.reference_id.unwrap_or_default(),
                "",
                "no KTP OCR result exists under this reference id",
            );
        }
        Detail::RetryInfo(delay) => {
            details.set_retry_info(Some(*delay));
        }
    }
    let mut status = Status::with_error_details(row.code, row.message.clone(), details);
    if let Ok(v) = MetadataValue::try_from(call.request_id) {
        status.metadata_mut().insert(REQUEST_ID_HEADER, v);
    }
    status
}

/// The canonical upper-case name of a code, as in the gRPC spec and logs.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        reference_id::InvalidReferenceId,
        upstream::{BodyProblem, ImageQualityFlags},
    };

    fn job(code: &str) -> GatewayError {
        GatewayError::Upstream(UpstreamError::JobFailed {
            status: 200,
            code: code.to_owned(),
            image_quality: None,
        })
    }

    fn http(status: u16, code: Option<&str>) -> GatewayError {
        GatewayError::Upstream(UpstreamError::Status {
            status,
            error_code: code.map(str::to_owned),
            retry_after: None,
        })
    }

    fn row(err: &GatewayError) -> (Code, String, &'static str) {
        let r = classify(err);
        (r.code, r.reason, r.domain)
    }

    fn meta(err: &GatewayError, key: &str) -> Option<String> {
        classify(err)
            .metadata
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    #[test]
    fn row_200_fail_on_1() {
        assert_eq!(
            row(&job("FAIL_ON_1")),
            (
                Code::FailedPrecondition,
                "FAIL_ON_1".into(),
                UPSTREAM_DOMAIN
            )
        );
        let err = GatewayError::Upstream(UpstreamError::JobFailed {
            status: 200,
            code: "FAIL_ON_1".into(),
            image_quality: Some(ImageQualityFlags {
                blur: Some(true),
                dark: Some(false),
                flashlight: None,
                grayscale: Some(true),
            }),
        });
        assert_eq!(meta(&err, "blur").as_deref(), Some("true"));
        assert_eq!(meta(&err, "dark").as_deref(), Some("false"));
        assert_eq!(meta(&err, "flashlight"), None);
        assert_eq!(meta(&err, "grayscale").as_deref(), Some("true"));
        assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("200"));
        assert_eq!(classify(&err).detail, Detail::None);
    }

    #[test]
    fn row_200_ktp_not_detected() {
        assert_eq!(
            row(&job("KTP_NOT_DETECTED")),
            (
                Code::FailedPrecondition,
                "KTP_NOT_DETECTED".into(),
                UPSTREAM_DOMAIN
            )
        );
    }

    #[test]
    fn row_200_internal_server_error() {
        assert_eq!(
            row(&job("INTERNAL_SERVER_ERROR")),
            (
                Code::Internal,
                "INTERNAL_SERVER_ERROR".into(),
                UPSTREAM_DOMAIN
            )
        );
    }

    #[test]
    fn row_200_other_code_is_unknown_with_the_code_as_given() {
        assert_eq!(
            row(&job("NEW_THING_9")),
            (Code::Unknown, "NEW_THING_9".into(), UPSTREAM_DOMAIN)
        );
        assert_eq!(
            row(&job("fail_on_1")),
            (Code::Unknown, "fail_on_1".into(), UPSTREAM_DOMAIN)
        );
    }

    #[test]
    fn row_400_invalid_payload_reference_id() {
        let err = http(400, Some("INVALID_PAYLOAD_REFERENCE_ID"));
        assert_eq!(
            row(&err),
            (
                Code::InvalidArgument,
                "INVALID_PAYLOAD_REFERENCE_ID".into(),
                UPSTREAM_DOMAIN
            )
        );
        assert!(matches!(classify(&err).detail, Detail::BadRequest(_)));
        assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("400"));
    }

    #[test]
    fn row_400_sandbox_code_and_other_400s() {
        let err = http(400, Some("INVALID_SANDBOX_CODE"));
        assert_eq!(
            row(&err),
            (
                Code::InvalidArgument,
                "INVALID_SANDBOX_CODE".into(),
                UPSTREAM_DOMAIN
            )
        );
        assert!(matches!(classify(&err).detail, Detail::BadRequest(_)));
        // Any other 400 says the gateway's own request was wrong: not the caller's fault.
        let err = http(400, Some("INVALID_PAYLOAD"));
        assert_eq!(
            row(&err),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            meta(&err, "upstream_error_code").as_deref(),
            Some("INVALID_PAYLOAD")
        );
    }

    #[test]
    fn row_local_validation_failure() {
        for why in [
            InvalidReferenceId::Empty,
            InvalidReferenceId::Blank,
            InvalidReferenceId::TooLong(200),
            InvalidReferenceId::ControlCharacter,
        ] {
            let err = GatewayError::InvalidReferenceId(why);
            assert_eq!(
                row(&err),
                (
                    Code::InvalidArgument,
                    "INVALID_REFERENCE_ID".into(),
                    GATEWAY_DOMAIN
                )
            );
            assert_eq!(classify(&err).detail, Detail::BadRequest(why.to_string()));
            assert_eq!(meta(&err, "upstream_http_status"), None);
            assert_eq!(meta(&err, "constraint").as_deref(), Some(why.constraint()));
        }
    }

    #[test]
    fn row_401() {
        for code in [None, Some("UNAUTHORIZED")] {
            let err = http(401, code);
            assert_eq!(
                row(&err),
                (
                    Code::Internal,
                    "UPSTREAM_AUTH_FAILED".into(),
                    GATEWAY_DOMAIN
                )
            );
            assert_eq!(meta(&err, "upstream_http_status").as_deref(), Some("401"));
            assert_eq!(meta(&err, "upstream_error_code").as_deref(), code);
        }
    }

    #[test]
    fn row_403_insufficient_quota() {
        let err = http(403, Some("INSUFFICIENT_QUOTA"));
        assert_eq!(
            row(&err),
            (
                Code::ResourceExhausted,
                "INSUFFICIENT_QUOTA".into(),
                UPSTREAM_DOMAIN
            )
        );
        assert_eq!(classify(&err).detail, Detail::QuotaFailure);
        // Any other 403 is the credentials' fault.
        assert_eq!(
            row(&http(403, None)),
            (
                Code::Internal,
                "UPSTREAM_AUTH_FAILED".into(),
                GATEWAY_DOMAIN
            )
        );
    }

    #[test]
    fn row_404_not_found() {
        let err = http(404, Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND"));
        assert_eq!(
            row(&err),
            (
                Code::NotFound,
                "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND".into(),
                UPSTREAM_DOMAIN
            )
        );
        assert_eq!(classify(&err).detail, Detail::ResourceInfo);
        // A 404 without the documented code is a wrong route, not a missing result.
        assert_eq!(
            row(&http(404, Some("NOT_FOUND"))),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            row(&http(404, None)),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            )
        );
    }

    #[test]
    fn row_429_with_and_without_retry_after() {
        let err = http(429, None);
        assert_eq!(
            row(&err),
            (
                Code::Unavailable,
                "UPSTREAM_RATE_LIMITED".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            classify(&err).detail,
            Detail::RetryInfo(DEFAULT_RETRY_DELAY)
        );
        let err = GatewayError::Upstream(UpstreamError::Status {
            status: 429,
            error_code: None,
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!(
            classify(&err).detail,
            Detail::RetryInfo(Duration::from_secs(7))
        );
    }

    #[test]
    fn row_5xx_and_transport() {
        for status in [500, 502, 503, 504] {
            let err = http(status, None);
            assert_eq!(
                row(&err),
                (
                    Code::Unavailable,
                    "UPSTREAM_UNAVAILABLE".into(),
                    GATEWAY_DOMAIN
                )
            );
            assert!(matches!(classify(&err).detail, Detail::RetryInfo(_)));
            assert_eq!(meta(&err, "upstream_http_status"), Some(status.to_string()));
            let err = http(status, Some("INTERNAL_SERVER_ERROR"));
            assert_eq!(
                row(&err),
                (
                    Code::Unavailable,
                    "INTERNAL_SERVER_ERROR".into(),
                    UPSTREAM_DOMAIN
                )
            );
        }
        let err = GatewayError::Upstream(UpstreamError::Transport {
            status: None,
            detail: "connection refused".into(),
        });
        assert_eq!(
            row(&err),
            (
                Code::Unavailable,
                "UPSTREAM_UNAVAILABLE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            classify(&err).detail,
            Detail::RetryInfo(DEFAULT_RETRY_DELAY)
        );
        assert_eq!(meta(&err, "upstream_http_status"), None);
    }

    #[test]
    fn row_upstream_timeout() {
        let err = GatewayError::Upstream(UpstreamError::Timeout {
            limit: Duration::from_secs(10),
            status: None,
        });
        assert_eq!(
            row(&err),
            (Code::Unavailable, "UPSTREAM_TIMEOUT".into(), GATEWAY_DOMAIN)
        );
        assert!(matches!(classify(&err).detail, Detail::RetryInfo(_)));
    }

    #[test]
    fn row_circuit_open() {
        let err = GatewayError::Upstream(UpstreamError::CircuitOpen {
            retry_in: Duration::from_millis(7300),
        });
        assert_eq!(
            row(&err),
            (
                Code::Unavailable,
                "UPSTREAM_CIRCUIT_OPEN".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(
            classify(&err).detail,
            Detail::RetryInfo(Duration::from_millis(7300))
        );
        assert_eq!(meta(&err, "upstream_http_status"), None);
    }

    #[test]
    fn row_unauthenticated() {
        let err = GatewayError::Unauthenticated(Unauthenticated::Missing);
        assert_eq!(
            row(&err),
            (
                Code::Unauthenticated,
                "BEARER_TOKEN_MISSING".into(),
                GATEWAY_DOMAIN
            )
        );
        let err = GatewayError::Unauthenticated(Unauthenticated::Invalid);
        assert_eq!(
            row(&err),
            (
                Code::Unauthenticated,
                "BEARER_TOKEN_INVALID".into(),
                GATEWAY_DOMAIN
            )
        );
    }

    #[test]
    fn row_overloaded() {
        let err = GatewayError::Overloaded { limit: 64 };
        assert_eq!(
            row(&err),
            (Code::ResourceExhausted, "OVERLOADED".into(), GATEWAY_DOMAIN)
        );
        assert_eq!(meta(&err, "max_in_flight").as_deref(), Some("64"));
    }

    #[test]
    fn rows_for_requests_tonic_refused() {
        let refused = |code| {
            GatewayError::Malformed(crate::error::MalformedRequest {
                code,
                message: "tonic's words".into(),
            })
        };
        for (tonic_code, code, reason) in [
            (Code::OutOfRange, Code::InvalidArgument, "REQUEST_TOO_LARGE"),
            (
                Code::Internal,
                Code::InvalidArgument,
                "REQUEST_NOT_DECODABLE",
            ),
            (Code::Unimplemented, Code::Unimplemented, "REQUEST_REFUSED"),
        ] {
            let err = refused(tonic_code);
            assert_eq!(row(&err), (code, reason.into(), GATEWAY_DOMAIN));
            assert_eq!(classify(&err).message, "tonic's words");
        }
    }

    #[test]
    fn row_caller_deadline() {
        let err = GatewayError::DeadlineExceeded;
        assert_eq!(
            row(&err),
            (
                Code::DeadlineExceeded,
                "DEADLINE_EXCEEDED".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(classify(&err).detail, Detail::None);
    }

    #[test]
    fn row_bad_response_and_unexpected_status() {
        let err = GatewayError::Upstream(UpstreamError::BadResponse {
            status: 200,
            problem: BodyProblem::NotJson,
        });
        assert_eq!(
            row(&err),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            )
        );
        assert_eq!(meta(&err, "problem").as_deref(), Some("not_json"));
        for status in [100, 302, 400, 405, 418, 501, 505, 599] {
            let err = http(status, None);
            assert_eq!(
                row(&err),
                (
                    Code::Internal,
                    "UPSTREAM_BAD_RESPONSE".into(),
                    GATEWAY_DOMAIN
                ),
                "HTTP {status}"
            );
        }
        assert_eq!(
            row(&http(418, Some("TEAPOT"))),
            (
                Code::Internal,
                "UPSTREAM_BAD_RESPONSE".into(),
                GATEWAY_DOMAIN
            )
        );
    }

    #[test]
    fn status_carries_error_info_request_info_and_the_row_detail() {
        let call = CallContext {
            request_id: "req-1",
            reference_id: Some("REF_9"),
            ..Default::default()
        };
        let status = to_status(
            &http(404, Some("INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND")),
            call,
        );
        assert_eq!(status.code(), Code::NotFound);
        let d = status.get_error_details();
        let info = d.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND");
        assert_eq!(info.domain, UPSTREAM_DOMAIN);
        assert_eq!(
            info.metadata
                .get("upstream_http_status")
                .map(String::as_str),
            Some("404")
        );
        assert_eq!(d.request_info().expect("RequestInfo").request_id, "req-1");
        assert_eq!(
            d.resource_info().expect("ResourceInfo").resource_name,
            "REF_9"
        );
        assert_eq!(status.metadata().get(REQUEST_ID_HEADER).unwrap(), "req-1");

        let status = to_status(&http(429, None), call);
        let retry = status
            .get_error_details()
            .retry_info()
            .cloned()
            .expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(DEFAULT_RETRY_DELAY));

        let status = to_status(&http(403, Some("INSUFFICIENT_QUOTA")), call);
        assert!(status.get_error_details().quota_failure().is_some());

        let status = to_status(
            &GatewayError::InvalidReferenceId(InvalidReferenceId::Empty),
            call,
        );
        let bad = status
            .get_error_details()
            .bad_request()
            .cloned()
            .expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "reference_id");
    }
}
