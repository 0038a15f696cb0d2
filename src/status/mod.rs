//! The one conversion from domain error to gRPC status: [`classify()`] picks
//! the README error-table row of a
//! [`GatewayError`] (gRPC code, `ErrorInfo`
//! reason and domain, metadata, the detail that fits), [`render`] turns a row
//! into a `tonic::Status` with rich details.
//!
//! Reasons the upstream gave keep its spelling under [`UPSTREAM_DOMAIN`];
//! reasons the gateway makes up live under [`GATEWAY_DOMAIN`].

use std::{collections::HashMap, time::Duration};

use crate::error::{GatewayError, MalformedRequest, Refusal};
use tonic::{Code, Status, metadata::MetadataValue};
use tonic_types::{ErrorDetails, StatusExt};

mod classify;

pub use classify::classify;

/// Domain of reasons the upstream gave (its `error_code`, verbatim).
pub const UPSTREAM_DOMAIN: &str = "api.verihubs.com";
/// Domain of reasons this gateway makes up.
pub const GATEWAY_DOMAIN: &str = "ktp-gateway";
/// `ErrorInfo` metadata key of the upstream's HTTP status, whenever there was one.
pub const UPSTREAM_HTTP_STATUS: &str = "upstream_http_status";
/// `ErrorInfo` metadata key of the call's reference id, on every error once
/// the id is valid.
pub const REFERENCE_ID: &str = "reference_id";
/// Metadata key of the request id, read from callers and echoed back.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Retry delay suggested when the upstream gave no `Retry-After`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The gateway's own reasons.
pub mod reason {
    /// The request's `reference_id` failed the local check; nothing was sent.
    pub const INVALID_REFERENCE_ID: &str = "INVALID_REFERENCE_ID";
    /// The upstream refused the gateway's own credentials: the caller cannot fix
    /// that, so it is not UNAUTHENTICATED.
    pub const UPSTREAM_AUTH_FAILED: &str = "UPSTREAM_AUTH_FAILED";
    /// The upstream answered 429.
    pub const UPSTREAM_RATE_LIMITED: &str = "UPSTREAM_RATE_LIMITED";
    /// The upstream could not be reached or cut its answer, or a 5xx came
    /// without a code of its own.
    pub const UPSTREAM_UNAVAILABLE: &str = "UPSTREAM_UNAVAILABLE";
    /// The upstream took longer than `upstream.timeout`.
    pub const UPSTREAM_TIMEOUT: &str = "UPSTREAM_TIMEOUT";
    /// The caller's `grpc-timeout` ran out before the upstream answered.
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    /// The server's shutdown ended a waiting call (UNAVAILABLE when it may be
    /// retried as is, ABORTED for `ExtractKtp`).
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    /// The request message did not arrive within `server.request_read_timeout`.
    pub const REQUEST_READ_TIMEOUT: &str = "REQUEST_READ_TIMEOUT";
    /// The upstream's answer was unusable; metadata `problem` says how.
    pub const UPSTREAM_BAD_RESPONSE: &str = "UPSTREAM_BAD_RESPONSE";
    /// The breaker is open, so no upstream call was made.
    pub const UPSTREAM_CIRCUIT_OPEN: &str = "UPSTREAM_CIRCUIT_OPEN";
    /// `server.max_in_flight` calls were already in flight, or no upstream
    /// connection slot (`upstream.max_connections`) came free in time.
    pub const OVERLOADED: &str = "OVERLOADED";
    /// Auth is on and the call carried no bearer token.
    pub const BEARER_TOKEN_MISSING: &str = "BEARER_TOKEN_MISSING";
    /// Auth is on and the call's bearer token is not one of the configured ones.
    pub const BEARER_TOKEN_INVALID: &str = "BEARER_TOKEN_INVALID";
    /// tonic refused a request message over the size limit.
    pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
    /// tonic could not decode the request message.
    pub const REQUEST_NOT_DECODABLE: &str = "REQUEST_NOT_DECODABLE";
    /// Anything else tonic refused before the gateway's code ran.
    pub const REQUEST_REFUSED: &str = "REQUEST_REFUSED";
    /// Local image check failure (`SubmitKtp`, `ExtractKtp`).
    pub const INVALID_IMAGE: &str = "INVALID_IMAGE";
    /// A `read_mask` path that is no top-level answer field.
    pub const INVALID_READ_MASK: &str = "INVALID_READ_MASK";
    /// A `read_mask` path outside the caller's allowance.
    pub const FIELD_NOT_ALLOWED: &str = "FIELD_NOT_ALLOWED";
    /// `ExtractKtp`'s wait ended before the job's result was ready.
    pub const RESULT_NOT_READY: &str = "RESULT_NOT_READY";
    /// A bug of the gateway: the shared upstream request a call waited on
    /// panicked or was aborted.
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";

    // Upstream codes the table names.
    /// The image failed the quality check asked for at submit.
    pub const FAIL_ON_1: &str = "FAIL_ON_1";
    /// The upstream found no KTP in the image.
    pub const KTP_NOT_DETECTED: &str = "KTP_NOT_DETECTED";
    /// The upstream's own failure, reported inside a 200.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    /// The quota of the gateway's App-ID is used up (403).
    pub const INSUFFICIENT_QUOTA: &str = "INSUFFICIENT_QUOTA";
    /// The upstream refused the reference id (400).
    pub const INVALID_PAYLOAD_REFERENCE_ID: &str = "INVALID_PAYLOAD_REFERENCE_ID";
    /// No result exists under the reference id (404).
    pub const INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND: &str =
        "INVALID_PAYLOAD_REFERENCE_ID_NOT_FOUND";
    /// The submit carried no `image` key (400).
    pub const MISSING_PAYLOAD_IMAGE: &str = "MISSING_PAYLOAD_IMAGE";
    /// The vendor sandbox's answer to an id that is not one of its magic values.
    pub const INVALID_SANDBOX_CODE: &str = "INVALID_SANDBOX_CODE";
}

/// The detail type a row adds beside `ErrorInfo` and `RequestInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// `ErrorInfo` and `RequestInfo` say it all.
    None,
    /// A `BadRequest` violation on a request field.
    BadRequest {
        /// The request field at fault, as named in the proto.
        field: &'static str,
        /// What is wrong with it; never the value itself.
        description: String,
    },
    /// A `BadRequest` violation on a JSON member the request message has
    /// no field for, named as the caller wrote it.
    UnknownField {
        /// The member's name.
        name: String,
    },
    /// A `QuotaFailure` violation.
    QuotaFailure,
    /// A `ResourceInfo` naming the reference id (no result under it).
    ResourceInfo,
    /// A `ResourceInfo` naming the reference id (a job is already under it).
    ResourceExists,
    /// A `RetryInfo` with this delay.
    RetryInfo(Duration),
}

/// One row of the table, for one error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The status code; only UNAVAILABLE tells a client to retry as is.
    pub code: Code,
    /// `ErrorInfo.reason`: the upstream's `error_code` verbatim, or one of
    /// [`reason`].
    pub reason: String,
    /// [`UPSTREAM_DOMAIN`] or [`GATEWAY_DOMAIN`]: who made up the reason.
    pub domain: &'static str,
    /// Human-readable; never holds personal data, credentials or body text.
    pub message: String,
    /// `ErrorInfo.metadata`: facts a client can act on without parsing the
    /// message.
    pub metadata: Vec<(&'static str, String)>,
    /// The one detail type the row adds.
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
        self.with(UPSTREAM_HTTP_STATUS, status)
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

/// Renders one row as a status with `ErrorInfo`, `RequestInfo` (the call's
/// request id), the row's detail, and the request id in `x-request-id`
/// metadata. `reference_id` names the resource of a `ResourceInfo`.
pub fn render(row: &Row, request_id: &str, reference_id: Option<&str>) -> Status {
    let mut details = ErrorDetails::new();
    let metadata: HashMap<String, String> = row
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    details.set_error_info(row.reason.clone(), row.domain, metadata);
    details.set_request_info(request_id, "");
    match &row.detail {
        Detail::None => {}
        Detail::BadRequest { field, description } => {
            details.add_bad_request_violation(*field, description.clone());
        }
        Detail::UnknownField { name } => {
            details.add_bad_request_violation(name.clone(), "unknown field");
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
                reference_id.unwrap_or_default(),
                "",
                "no KTP OCR result exists under this reference id",
            );
        }
        Detail::ResourceExists => {
            details.set_resource_info(
                "ktp.v1.KtpResult",
                reference_id.unwrap_or_default(),
                "",
                "a KTP OCR job was already submitted under this reference id",
            );
        }
        Detail::RetryInfo(delay) => {
            details.set_retry_info(Some(*delay));
        }
    }
    let mut status = Status::with_error_details(row.code, row.message.clone(), details);
    if let Ok(v) = MetadataValue::try_from(request_id) {
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

/// A status tonic produced itself, as the domain error it stands for.
pub fn refusal(status: &Status) -> GatewayError {
    let kind = match status.code() {
        Code::OutOfRange => Refusal::TooLarge,
        Code::Internal => Refusal::NotDecodable,
        code => Refusal::Other(code as i32),
    };
    GatewayError::Malformed(MalformedRequest {
        kind,
        message: status.message().to_owned(),
    })
}

#[cfg(test)]
mod tests;
